"""majl_wei2024's losses, cases, confidences and the JCF's gradient path, on hand-built inputs."""

import math

import numpy as np
import pytest
import torch

from weakmir.methods import majl
from weakmir.models import build
from weakmir.models.pitch_nets import CREPE_CENTS0, grid_of

GRID = grid_of(CREPE_CENTS0, 20.0, 360)


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_each_dwhs_case_loss_by_hand():
    w = torch.tensor([[1.2, 0.7]])
    m, p = 1.2, 0.7
    want = [abs(m - 1) + abs(p - 1),                      # eq. 9
            abs(m - 1) - math.log(_sig(1 - p)),           # eq. 10
            -math.log(_sig(m - 1)) + abs(p - 1),          # eq. 11
            abs(m - 1) - math.log(_sig(p - 1))]           # eq. 12
    terms = majl.dwhs_terms(w)[0].tolist()
    assert terms == pytest.approx(want, rel=1e-6)
    for k in range(4):
        assert float(majl.dwhs_loss(w, torch.tensor([k + 1]))) == pytest.approx(want[k], rel=1e-6)


def test_dwhs_loss_sums_case_means_and_an_empty_case_gives_zero():
    w = torch.tensor([[1.0, 1.0], [1.5, 0.5], [0.5, 1.5], [0.9, 1.1]])
    case = torch.tensor([1, 1, 3, 3])  # no sample of case 2 or 4
    t = majl.dwhs_terms(w)
    assert float(majl.dwhs_loss(w, case)) == pytest.approx(float(t[:2, 0].mean() + t[2:, 2].mean()), rel=1e-6)
    assert float(majl.dwhs_loss(w[:0], case[:0])) == 0.0
    # weights exactly at their targets: the MAE part of case 1 is 0
    assert float(majl.dwhs_loss(torch.ones(3, 2), torch.ones(3, dtype=torch.long))) == 0.0


def test_case_assignment_on_built_predictions():
    f0 = torch.full((4, 10), 220.0)
    good = majl.pitch_targets(f0, GRID)
    bad = majl.pitch_targets(torch.full((4, 10), 330.0), GRID)  # a fifth off: > 50 cents
    pred = torch.stack([good[0], good[1], bad[2], bad[3]])
    target = torch.stack([good[0], bad[1], good[2], bad[3]])
    ok_pred, ok_tgt = majl.is_correct(pred, f0, GRID), majl.is_correct(target, f0, GRID)
    assert ok_pred.tolist() == [True, True, False, False]
    assert majl.cases(ok_pred, ok_tgt).tolist() == [1, 2, 3, 4]


def test_correct_is_raw_pitch_accuracy_at_a_threshold():
    f0 = torch.tensor([[220.0] * 8 + [0.0] * 2])
    y = majl.pitch_targets(torch.tensor([[220.0] * 6 + [330.0] * 2 + [0.0] * 2]), GRID)  # 6 of 8 voiced right
    assert majl.is_correct(y, f0, GRID, correct_at=0.75).item()
    assert not majl.is_correct(y, f0, GRID, correct_at=0.8).item()
    assert majl.is_correct(0.3 * majl.pitch_targets(f0, GRID), f0, GRID).item()  # under-confident but right
    w = torch.tensor([[1.0] * 6 + [0.0] * 4])
    assert majl.is_correct(y, f0, GRID, w, correct_at=1.0).item()  # frames without labels do not count
    assert majl.is_correct(y, torch.zeros(1, 10), GRID).item()  # nothing voiced: nothing to get wrong


def test_confidence_eq4_and_threshold_masks():
    probs = torch.zeros(3, 360)
    probs[0, 10], probs[1, 10], probs[2, 10] = 0.9, 0.5, 0.2
    assert majl.confidence(probs).tolist() == pytest.approx([0.9, 0.5, 0.8])
    assert majl.threshold(majl.confidence(probs), 0.7).tolist() == [1.0, 0.0, 1.0]
    from weakmir.data.targets import pitch_confidence  # the numpy form agrees

    assert pitch_confidence(probs.numpy()).tolist() == pytest.approx([0.9, 0.5, 0.8])


def test_pitch_targets_decode_back_within_a_cent():
    f0 = torch.tensor([[110.0, 220.0, 0.0, 440.0, 987.77]])
    y = majl.pitch_targets(f0, GRID)
    assert y[0, 2].abs().sum() == 0
    est, voiced = majl.decode(y, GRID)
    assert voiced.tolist() == [[True, True, False, True, True]]
    v = f0 > 0
    assert torch.all((1200 * torch.log2(est[v] / f0[v])).abs() < 1.0)


def test_decoded_f0_of_a_tone_through_pretrained_crepe_within_10_cents():
    crepe = build("crepe", capacity=4, pretrained=True).eval()
    sr = 16000
    t = np.arange(sr) / sr
    for hz in (196.0, 440.0):
        x = torch.tensor(0.4 * np.sin(2 * np.pi * hz * t), dtype=torch.float32)[None]
        with torch.no_grad():
            est, voiced = majl.decode(crepe(x)[:, 5:-5], crepe.grid)
        assert voiced.all()
        assert float((1200 * torch.log2(est / hz)).abs().median()) < 10.0


def test_losses_mask_missing_labels():
    t = torch.arange(640) / 16000
    ref, est = torch.zeros(2, 640), torch.sin(2 * math.pi * 500 * t).repeat(2, 1)
    w = torch.zeros(2, 3)
    w[0] = 1.0
    lm = majl.loss_mss(ref, est, w, hop=320)
    spec = torch.stft(est[0], 2048, 320, window=torch.hann_window(2048, periodic=True), center=True,
                      pad_mode="constant", return_complex=True).abs().sum(0) / 1024  # Σ_f |Ŝ| / sum(window)
    assert float(lm[0]) == pytest.approx(float(est[0].abs().mean() + spec.mean()), rel=1e-4)
    assert lm[1] == 0.0  # eq. 1 on the labelled sample only
    assert float(majl.loss_mss(est, est)[0]) == 0.0
    y = torch.zeros(1, 2, 4)
    p = torch.full((1, 2, 4), 0.25)
    want = -math.log(0.75)
    assert float(majl.loss_pe(y, p)[0]) == pytest.approx(want, rel=1e-5)  # eq. 2, mean over bins and frames
    assert float(majl.loss_pe(y, p, torch.zeros(1, 2))[0]) == 0.0


def test_pe_loss_gradient_reaches_the_mss_in_the_jcf():
    jcf = build("majl_jcf", mss="unet_jansson", mss_kwargs={"channels": [4, 8]}, pe="crepe", pe_kwargs={"capacity": 1})
    jcf.train()
    mix = torch.randn(2, 3200) * 0.1
    out = jcf(mix)
    loss = majl.loss_pe(majl.pitch_targets(torch.full((2, out["pitch"].shape[1]), 220.0), jcf.grid), out["pitch"]).mean()
    loss.backward()
    grads = [p.grad for p in jcf.mss.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_joint_step_dwhs_trains_the_dwm_and_logs_cases():
    jcf = build("majl_jcf", mss="unet_jansson", mss_kwargs={"channels": [4, 8]}, pe="harmof0", pe_kwargs={"channels": [4]})
    m = majl.Trainable(jcf, build("majl_dwm"))
    m.train()
    B, L = 3, 3200
    T = L // 320 + 1
    batch = {"mix": torch.randn(B, L) * 0.1, "voice": torch.randn(B, L) * 0.05, "f0": torch.full((B, T), 220.0),
             "w_mss": torch.ones(B, T), "w_pe": torch.ones(B, T)}
    history = []
    loss, logs = majl.joint_step(dwhs=True, history=history)(m, batch)
    loss.backward()
    assert sum(logs[f"case{k}"] for k in range(1, 5)) == pytest.approx(1.0)
    assert history and all(len(v) == 2 for v in history[0].values())
    assert m.dwm.fc[-1].weight.grad.abs().sum() > 0  # the DWM learns from eq. 9-13
    naive, _ = majl.joint_step(dwhs=False)(m, batch)
    assert torch.isfinite(naive)


def test_pe_lr_gives_the_pe_module_its_own_rate_in_training():
    from weakmir.train.engine import fit

    torch.manual_seed(0)
    jcf = build("majl_jcf", mss="unet_jansson", mss_kwargs={"channels": [4, 8]}, pe="harmof0", pe_kwargs={"channels": [4]})
    m = majl.Trainable(jcf, build("majl_dwm"), pe_lr=1e-12)
    groups = m.param_groups(1e-3)
    assert [g["lr"] for g in groups] == [1e-3, 1e-12]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in jcf.pe.parameters()}
    assert sum(len(g["params"]) for g in groups) == len(list(m.parameters()))
    assert majl.Trainable(jcf).param_groups(1e-3)[1]["lr"] == 1e-3  # 0: the run's rate
    T = 3200 // 320 + 1
    data = [{"mix": torch.randn(3200) * 0.1, "voice": torch.randn(3200) * 0.05, "f0": torch.full((T,), 220.0),
             "w_mss": torch.ones(T), "w_pe": torch.ones(T)} for _ in range(4)]
    pe0 = [p.detach().clone() for p in jcf.pe.parameters()]
    mss0 = [p.detach().clone() for p in jcf.mss.parameters()]
    fit(m, majl.joint_step(dwhs=True), data, 2, batch_size=2, lr=1e-3)
    assert max(float((p.detach() - q).abs().max()) for p, q in zip(jcf.pe.parameters(), pe0)) < 1e-8  # the optimiser used the groups
    assert max(float((p.detach() - q).abs().max()) for p, q in zip(jcf.mss.parameters(), mss0)) > 1e-5


def test_crops_mask_what_a_track_lacks():
    from weakmir.data.voice import VoiceTrack

    L = 16000
    full = VoiceTrack("a", "full", np.ones(L, np.float32), np.ones(L, np.float32), np.full(L // 320 + 1, 200.0, np.float32))
    stems = VoiceTrack("b", "stems", np.ones(L, np.float32), np.ones(L, np.float32), None)
    pitch = VoiceTrack("c", "pitch", np.ones(L, np.float32), None, np.full(L // 320 + 1, 200.0, np.float32))
    ds = majl.Crops([full, stems, pitch], seconds=0.32, crops=1)
    a, b, c = ds[0], ds[1], ds[2]
    assert a["mix"].shape == (5120,) and a["f0"].shape == (17,)
    assert a["w_mss"].sum() > 0 and a["w_pe"].sum() > 0
    assert b["w_pe"].sum() == 0 and b["w_mss"].sum() > 0
    assert c["w_mss"].sum() == 0 and c["voice"].abs().sum() == 0 and c["w_pe"].sum() > 0


def test_epoch_crops_caps_an_epoch_and_draws_its_tracks_from_all_of_them():
    """``per_epoch`` binds only above the tracks' crops (below, every item is as without it); when it binds an
    epoch holds that many crops, their tracks drawn from every track; ``TrainConfig.steps`` follows it."""
    from weakmir.data.voice import VoiceTrack

    L = 16000
    tracks = [VoiceTrack(f"t{k}", "full", np.full(L, k + 1, np.float32), np.full(L, k + 1, np.float32),
                         np.full(L // 320 + 1, 200.0, np.float32)) for k in range(5)]
    plain = majl.Crops(tracks, seconds=0.32, crops=2, seed=3)
    loose = majl.Crops(tracks, seconds=0.32, crops=2, seed=3, per_epoch=20)
    assert len(plain) == len(loose) == 10
    for _ in range(2):  # two epochs: every item the same crop of the same track
        for i in range(10):
            a, b = plain[i], loose[i]
            assert torch.equal(a["mix"], b["mix"]) and torch.equal(a["f0"], b["f0"])
    capped = majl.Crops(tracks, seconds=0.32, crops=2, seed=3, per_epoch=3)
    assert len(capped) == 3
    seen = [int(capped[i]["mix"][0]) - 1 for _ in range(20) for i in range(3)]  # the track of each crop, 20 epochs
    assert set(seen) == set(range(5))  # every track is drawn, not only the first three
    assert majl.TrainConfig(crops=2, epochs=3, batch_size=2).steps(5) == 15
    assert majl.TrainConfig(crops=2, epochs=3, batch_size=2, epoch_crops=4).steps(5) == 6
    assert majl.TrainConfig(crops=2, epochs=3, batch_size=2, epoch_crops=40).steps(5) == 15
    # Stage II counts its tracks once (its crops list the full ones several times): the cap follows the count
    assert majl.TrainConfig(crops=2, epoch_crops=10).epoch_cap(5) == 0
    assert majl.TrainConfig(crops=2, epoch_crops=9).epoch_cap(5) == 9 and majl.TrainConfig(crops=2).epoch_cap(99) == 0
    with pytest.raises(ValueError, match="epoch_crops"):
        majl.TrainConfig(epoch_crops=-1)


def test_fit_caps_an_epoch_by_the_tracks_it_counts_not_by_stage2s_repeated_list():
    """``_fit`` hands ``Crops`` the cap of the tracks it counts: Stage II's union (the full tracks listed
    ``full_repeats`` times) stays uncapped while the counted tracks' crops fit, and is capped when they do not."""
    from types import SimpleNamespace

    from weakmir.data.voice import VoiceTrack
    from weakmir.experiments import majl as exp

    L = 16000
    tracks = [VoiceTrack(f"t{k}", "full", np.ones(L, np.float32), np.ones(L, np.float32),
                         np.full(L // 320 + 1, 200.0, np.float32)) for k in range(6)]
    got = {}
    runner = SimpleNamespace(load=lambda *a, **k: False,
                             train=lambda name, model, step, data, steps, *a, **k: got.update(n=len(data), steps=steps))
    union = tracks * 3  # 6 counted tracks listed 3 times
    for cap, n, steps in ((12, 36, 6), (8, 8, 4)):  # 6 tracks x 2 crops = 12: a cap of 12 does not bind (18 x 2 crops), 8 does
        cfg = majl.TrainConfig(crops=2, epochs=2, batch_size=4, epoch_crops=cap)
        exp._fit(runner, "s", None, None, lambda: union, 6, cfg, {}, {}, seed=0)
        assert (got["n"], got["steps"]) == (n, steps), cap


def test_filtered_thresholds_only_pseudo_labels():
    from weakmir.data.voice import VoiceTrack

    T = 4
    conf = np.array([0.9, 0.5, 0.75, 0.2], np.float32)
    s = VoiceTrack("s", "stems", np.zeros(960, np.float32), np.zeros(960, np.float32), np.zeros(T, np.float32),
                   conf_mss=np.ones(T, np.float32), conf_pe=conf)
    p = VoiceTrack("p", "pitch", np.zeros(960, np.float32), np.zeros(960, np.float32), np.zeros(T, np.float32),
                   conf_mss=conf, conf_pe=np.ones(T, np.float32))
    fs, fp = majl.filtered([s, p], 0.7)
    assert fs.conf_pe.tolist() == [1, 0, 1, 0] and fs.conf_mss.tolist() == [1, 1, 1, 1]
    assert fp.conf_mss.tolist() == [1, 0, 1, 0] and fp.conf_pe.tolist() == [1, 1, 1, 1]


def test_viterbi_decoding_removes_isolated_jumps():
    from weakmir.models.pitch_nets import viterbi_bins

    f0 = torch.full((1, 40), 220.0)
    p = majl.pitch_targets(f0, GRID)[0] * 0.6
    p[10] = majl.pitch_targets(torch.tensor([[440.0]]), GRID)[0, 0] * 0.9  # one frame an octave up
    est_argmax, _ = majl.decode(p, GRID, threshold=0.0)
    est_viterbi, _ = majl.decode(p, GRID, threshold=0.0, viterbi=True)
    assert est_argmax[10] == pytest.approx(440.0, rel=1e-3)
    assert abs(1200 * math.log2(float(est_viterbi[10]) / 220.0)) < 10  # the bin on the path (its own vector is elsewhere)
    path = viterbi_bins(p.numpy())
    assert path.shape == (40,) and (np.abs(np.diff(path)) < 12).all()  # never a jump beyond the band


def test_pe_weight_scales_only_the_pe_term_of_the_joint_loss():
    torch.manual_seed(0)
    jcf = build("majl_jcf", mss="unet_jansson", mss_kwargs={"channels": [4, 8]}, pe="harmof0", pe_kwargs={"channels": [4]})
    m = majl.Trainable(jcf, build("majl_dwm"))
    m.eval()  # no dropout: the same forward pass each call
    B, L = 2, 3200
    T = L // 320 + 1
    batch = {"mix": torch.randn(B, L) * 0.1, "voice": torch.randn(B, L) * 0.05, "f0": torch.full((B, T), 220.0),
             "w_mss": torch.ones(B, T), "w_pe": torch.ones(B, T)}
    for dwhs in (False, True):
        l0, l1, l3 = (float(majl.joint_step(dwhs=dwhs, pe_weight=w)(m, batch)[0].detach()) for w in (0.0, 1.0, 3.0))
        assert l1 - l0 > 1e-4  # the PE term is there ...
        assert l3 - l1 == pytest.approx(2 * (l1 - l0), rel=1e-4)  # ... and only it scales
