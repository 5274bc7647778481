import math

import numpy as np
import pytest
import torch

from weakmir.data.targets import harmonic_mask
from weakmir.methods import score_supervised as ss

LN2 = math.log(2.0)


def _roll(B=1, I=2, T=3):
    Y = torch.zeros(B, I, 88, T)
    Y[:, 0, 48, :] = 1.0  # instrument 0 plays A4 (MIDI 69 = row 48) in every frame
    if I > 1:
        Y[:, 1, 20, 1] = 1.0  # instrument 1 plays one note in frame 1
    return Y


def test_transcription_losses_eq_1_to_4_on_a_coin_flip_transcriptor():
    Y = _roll()
    p = torch.full_like(Y, 0.5)
    assert float(ss.bce(torch.tensor(1.0), torch.tensor(0.5))) == pytest.approx(LN2)
    # eq. 1: every one of I * 88 entries per frame costs ln 2; mean over frames
    assert float(ss.score_loss(p, Y)) == pytest.approx(2 * 88 * LN2, rel=1e-5)
    assert float(ss.score_loss(p, Y, weights=[2.0, 0.0])) == pytest.approx(2 * 88 * LN2, rel=1e-5)
    assert float(ss.pitch_loss(p, Y)) == pytest.approx(88 * LN2, rel=1e-5)  # eq. 2: 88 notes per frame
    assert float(ss.inst_loss(p, Y)) == pytest.approx(2 * LN2, rel=1e-5)  # eq. 3: I instruments per frame
    assert float(ss.transcription_loss(p, Y)) == pytest.approx((176 + 0.03 * 2 + 0.1 * 88) * LN2, rel=1e-5)
    perfect = Y.clone()
    assert float(ss.transcription_loss(perfect, Y)) < 1e-4
    with pytest.raises(ValueError, match="disagree"):
        ss.score_loss(p[:, :1], Y)


def test_class_weights_from_activity_rates():
    w = ss.class_weights([0.41, 0.14, 0.67])  # the paper's piano, guitar, bass rates
    assert float(w.mean()) == pytest.approx(1.0) and int(w.argmax()) == 1 and int(w.argmin()) == 2
    assert float(w[1] / w[0]) == pytest.approx(0.41 / 0.14)
    np.testing.assert_allclose(ss.activity_rates(_roll(T=4)).numpy(), [1.0, 0.25])
    with pytest.raises(ValueError):
        ss.class_weights([0.5, 0.0])


def test_data_weights_count_every_frame_of_every_track():
    from weakmir.data.scores import ScoreClips

    sr, hop = 1000, 100  # frames: 10 s -> 101, 5 s -> 51
    note = lambda on, off: np.array([[on, off, 60, 80.0]])  # noqa: E731
    tracks = [(np.zeros((1, 10 * sr), np.float32), None, [note(0.0, 10.1), np.zeros((0, 4))]),
              (np.zeros((1, 5 * sr), np.float32), None, [note(0.0, 5.1), note(0.0, 2.55)])]
    data = ScoreClips(tracks, ["a", "b"], sr, hop, seconds=1.0)
    rates, weights = ss.data_weights(data)
    np.testing.assert_allclose(rates.numpy(), [1.0, 26 / 152], atol=1e-6)  # b plays frames 0..25 of track 2
    np.testing.assert_allclose(weights.numpy(), ss.class_weights(rates).numpy())
    assert ss.data_weights(data, enabled=False)[1] is None


def test_a_perfect_separation_gives_zero_mixture_loss_and_leaks_cost_their_l1():
    g = torch.Generator().manual_seed(0)
    sources = torch.rand(2, 3, 5, 4, generator=g)
    sources[:, 2] = 0.0  # instrument 2 is silent in these clips
    X = sources.sum(dim=1)
    active = torch.tensor([[True, True, False]] * 2)
    assert float(ss.clip_mixture_loss(sources, X, active)) == 0.0
    leaky = sources.clone()
    leaky[:, 2] = 0.1
    # the silent instrument's estimate is penalised by its L1 (Σ_f = 5 bins * 0.1 per frame)
    assert float(ss.clip_mixture_loss(leaky, X, active)) == pytest.approx(0.5, rel=1e-5)
    swapped = sources[:, [1, 0, 2]]
    assert float(ss.clip_mixture_loss(swapped, X, active)) == 0.0  # eq. 6 alone cannot tell who is who


def test_frame_mixture_loss_of_the_baseline_uses_each_frames_active_set():
    sources = torch.ones(1, 2, 3, 4)  # two instruments, 3 bins, 4 frames
    sources[0, 1, :, 2:] = 0.0  # instrument 1 stops after frame 1
    X = sources.sum(dim=1)
    frames = torch.tensor([[[True] * 4, [True, True, False, False]]])
    assert float(ss.frame_mixture_loss(sources, X, frames)) == 0.0
    # instrument 1 takes half of instrument 0 where only 0 plays: the sum still equals X, so the clip-level
    # loss (eq. 6) sees nothing; the frame-level one charges 3 bins * 0.5 missing + 3 * 0.5 outside A_t in
    # 2 of the 4 frames -> 1.5 per frame
    shared = sources.clone()
    shared[0, :, :, 2:] = 0.5
    assert float(ss.clip_mixture_loss(shared, X, frames.any(dim=2))) == 0.0
    assert float(ss.frame_mixture_loss(shared, X, frames)) == pytest.approx(1.5)
    # eq. 8 takes either: frame-level activity (B, I, T) switches its mixture term to the frame-level loss
    Y, P = torch.zeros(1, 2, 88, 4), torch.full((1, 2, 2, 88, 4), 0.5)
    by_frame, by_clip = (float(ss.separator_loss(P, Y, shared, X, a, alpha2=2.0, beta2=0.0))
                         for a in (frames, frames.any(dim=2)))
    assert by_frame - by_clip == pytest.approx(2.0 * 1.5, rel=1e-5)
    with pytest.raises(ValueError, match=r"\(B, I, T\)"):
        ss.frame_mixture_loss(sources, X, frames.any(dim=2))


def test_harmonic_mask_marks_a4_bins_at_16k_2048_and_drives_eq_7():
    Y = _roll(I=1, T=2)
    H = torch.from_numpy(harmonic_mask(Y.numpy(), 16000, 2048, n_harmonics=1))  # f0 and first overtone
    on = set(np.flatnonzero(H[0, 0, :, 0].numpy()))
    assert {55, 56, 57} <= on  # 440 Hz * 2048 / 16 kHz = 56.3 -> bin 56 +- 1
    assert {112, 113, 114} <= on  # 880 Hz -> 112.6 -> bin 113 +- 1
    assert len(on) == 6
    X = torch.zeros(1, 1025, 2)
    X[0, 56] = 1.0
    X[0, 300] = 1.0  # energy off the harmonic grid: eq. 7 wants it in no source
    S = X[:, None].clone()
    # the estimate holds the off-grid energy: eq. 7 charges it twice (missing from the empty active
    # set of bin 300, and present in a source not active there)
    assert float(ss.harmonic_mixture_loss(S, X, H)) == pytest.approx(2.0)
    S[0, 0, 300] = 0.0  # dropped: only the first term's irreducible |X| at bin 300 is left
    assert float(ss.harmonic_mixture_loss(S, X, H)) == pytest.approx(1.0)
    S[0, 0, 56] = 0.5  # half the A4 energy missing from its active source
    assert float(ss.harmonic_mixture_loss(S, X, H)) == pytest.approx(1.5)


def test_separated_score_and_atl_flip_targets_and_aml_flips_sign():
    Y = _roll()
    own = ss.own_score(Y)  # a perfectly separated source transcribes to its own score only
    assert torch.equal(own[:, 0, 0], Y[:, 0]) and not own[:, 0, 1].any() and torch.equal(own[:, 1, 1], Y[:, 1])
    P_good = own.clamp(1e-4, 1 - 1e-4)
    P_bad = ss.other_score(Y).clamp(1e-4, 1 - 1e-4)  # each estimate holds only the other instruments
    assert float(ss.separated_score_loss(P_good, Y)) < 0.1 < float(ss.separated_score_loss(P_bad, Y))
    # eq. 10 asks the opposite of eq. 5: the target instrument silent, the others transcribed
    assert float(ss.adversarial_transcription_loss(P_bad, Y)) < 0.1 < float(ss.adversarial_transcription_loss(P_good, Y))
    p = torch.rand_like(Y)
    assert float(ss.adversarial_mixture_loss(p, Y)) == pytest.approx(-float(ss.score_loss(p, Y)))
    full = ss.transcriptor_step3_loss(p, Y, p, Y, P_good, alpha3=0.2, beta3=0.05)
    expect = ss.transcription_loss(p, Y) - 0.2 * ss.score_loss(p, Y) + 0.05 * ss.adversarial_transcription_loss(P_good, Y)
    assert float(full) == pytest.approx(float(expect), rel=1e-6)


def test_remix_takes_each_instrument_from_another_example():
    B, I = 4, 3
    S = torch.arange(B, dtype=torch.float32)[:, None, None, None].expand(B, I, 2, 5) * 10 + \
        torch.arange(I, dtype=torch.float32)[None, :, None, None]
    Y = torch.zeros(B, I, 88, 5)
    for a in range(B):
        Y[a, :, a] = 1.0  # example a plays note row a on every instrument
    Xr, Yr = ss.remix(S, Y, torch.Generator().manual_seed(0))
    assert Xr.shape == (B, 2, 5) and Yr.shape == Y.shape
    for a in range(B):
        src = [int(Yr[a, i].amax(dim=-1).argmax()) for i in range(I)]  # which example instrument i came from
        assert all(s != a for s in src)
        assert float(Xr[a, 0, 0]) == pytest.approx(sum(10 * s + i for i, s in enumerate(src)))
    with pytest.raises(ValueError, match="two examples"):
        ss.remix(S[:1], Y[:1])


def test_separator_loss_eq_8_combines_terms_with_weights():
    Y = _roll()
    S = torch.rand(1, 2, 7, 3)
    X = S.sum(dim=1) + 0.5
    active = torch.tensor([[True, True]])
    H = torch.ones(1, 2, 7, 3, dtype=torch.bool)
    P = torch.full((1, 2, 2, 88, 3), 0.5)
    total = ss.separator_loss(P, Y, S, X, active, H, alpha2=1.0, beta2=0.1)
    parts = ss.separated_score_loss(P, Y) + ss.clip_mixture_loss(S, X, active) + 0.1 * ss.harmonic_mixture_loss(S, X, H)
    assert float(total) == pytest.approx(float(parts), rel=1e-6)
    assert float(ss.clip_mixture_loss(S, X, active)) == pytest.approx(0.5 * 7, rel=1e-5)
    with pytest.raises(ValueError, match="harmonic"):
        ss.separator_loss(P, Y, S, X, active, None, beta2=0.1)


def test_tiny_three_step_run_learns_and_checkpoints_reload(chorale_corpus, tmp_path):
    """Steps 1-3 on seconds of the chorale corpus: every step's loss goes down, the checkpoints
    reload to identical outputs, and the separator runs through weakmir's chunked inference."""
    from weakmir.infer.separate import separate_array
    from weakmir.train import checkpoint

    out, m, _, _ = chorale_corpus
    cfg = ss.ScoreConfig(n_fft=512, hop_length=250, model={"channels": 16, "hidden": 32, "repeats": 2, "blocks": 3},
                         seconds=2.0, batch_size=4, steps=(12, 12, 8), examples_per_epoch=48,
                         splits=("train", "valid", "test"))
    r = ss.train_three_steps(m, cfg, tmp_path / "ckpt")
    assert r["instruments"] == ["violin", "clarinet", "saxophone", "bassoon"]
    for name, h in r["histories"].items():
        assert len(h) == dict(step1=12, step2=12, step3=8)[name]
        assert np.mean(h[-3:]) < np.mean(h[:3]), name
    x = torch.randn(1, 1, 16000, generator=torch.Generator().manual_seed(0))
    for name, model in (("transcriptor_3", r["transcriptor"]), ("separator_3", r["separator"])):
        again, meta = checkpoint.load(tmp_path / "ckpt" / f"{name}.ckpt")
        assert meta["config"]["method"] == "score-supervised"
        with torch.no_grad():
            a = model.transcribe(x) if name.startswith("transcriptor") else model(x)
            b = again.transcribe(x) if name.startswith("transcriptor") else again(x)
        assert torch.equal(a, b), name
    # step 2's separator was saved before step 3 changed it
    s2, _ = checkpoint.load(tmp_path / "ckpt" / "separator_2.ckpt")
    with torch.no_grad():
        assert not torch.equal(s2(x), r["separator"](x))
    est = separate_array(r["separator"], x[0].numpy(), chunk=8000, overlap=1000, context=4000)
    assert est.shape == (4, 1, 16000) and np.isfinite(est).all()
