import numpy as np
import pytest
import torch

from weakmir.infer.classify import classify, decide, window_starts
from weakmir.models import build
from weakmir.train import checkpoint


def test_paper_size_and_shape_contract():
    tiny = build("convnext", preset="tiny")
    n = sum(p.numel() for p in tiny.parameters())
    assert 27.7e6 < n < 27.9e6  # self-refine §4.2: ConvNeXt-T, 27.8 M parameters
    small = build("convnext", preset="small")
    x = torch.randn(3, 2, small.segment)
    y = small(x)
    assert y.shape == (3, 4) and ((y > 0) & (y < 1)).all()
    assert small.segment == round(2.97 * 44100)
    with pytest.raises(ValueError, match="expected"):
        small(torch.randn(1, 1, small.segment))
    with pytest.raises(Exception, match="unknown ConvNeXt preset"):
        build("convnext", preset="huge")


def test_batch_independence_and_checkpoint(tmp_path):
    torch.manual_seed(0)
    m = build("convnext", preset="small").eval()
    x = torch.randn(4, 2, m.segment)
    with torch.no_grad():
        full = m(x)
        one = m(x[1:2])
    assert torch.allclose(full[1:2], one, atol=1e-5)  # eval mode: no cross-talk in a batch
    p = checkpoint.save(tmp_path / "psi.ckpt", m, m.kwargs())
    m2, meta = checkpoint.load(p)
    with torch.no_grad():
        assert torch.equal(m2(x), full)
    assert meta["model"] == "convnext" and meta["kwargs"]["preset"] == "small"


class _EnergyStub(torch.nn.Module):
    """Probability of class 0 = 1 if the window holds signal, class 1 = the opposite."""

    segment = 100
    classes = ["drums", "bass"]

    def forward(self, x):
        on = (x.abs().amax(dim=(1, 2)) > 0).float()
        return torch.stack([on, 1 - on], dim=1)


def test_windowing_hop_average_threshold():
    assert window_starts(400, 100, 25) == list(range(0, 301, 25))
    assert window_starts(90, 100, 25) == [0]
    assert window_starts(410, 100, 25)[-1] == 310  # the last window is flush with the end
    audio = np.zeros((2, 400), np.float32)
    audio[:, :100] = 1.0  # signal in the first quarter only
    probs = classify(_EnergyStub(), audio)
    # windows at 0, 25, 50, 75 hold signal (4 of 13)
    assert probs[0] == pytest.approx(4 / 13) and probs[1] == pytest.approx(9 / 13)
    assert decide(probs, ["drums", "bass"], 0.9) == ["bass"]  # none above 0.9: the top one
    assert decide(np.array([0.95, 0.92]), ["drums", "bass"], 0.9) == ["drums", "bass"]  # multi-label
    assert decide(np.array([0.95, 0.6]), ["drums", "bass"], [0.9, 0.5]) == ["drums", "bass"]  # per-class thresholds
    short = classify(_EnergyStub(), np.ones((2, 30), np.float32))  # shorter than a window: padded
    assert short[0] == 1.0


def test_small_head_keeps_frequency_and_tiny_is_convnext():
    """``small`` pools over time only, so where energy sits in frequency reaches the head: moving a
    tone changes the output of an untrained net; ``tiny`` keeps ConvNeXt's global pool and 1e-6 layer scale."""
    tiny = build("convnext", preset="tiny")
    assert tiny.pool == "global" and float(tiny.stages[0][0].gamma[0].detach()) == pytest.approx(1e-6)
    torch.manual_seed(0)
    small = build("convnext", preset="small", sample_rate=22050, n_fft=1024, hop_length=256).eval()
    assert small.pool == "time" and float(small.stages[0][0].gamma[0].detach()) == pytest.approx(0.1)
    assert small.head.in_features == 128 * 16  # 513 bins -> 128 -> 64 -> 32 -> 16 rows
    t = torch.arange(small.segment) / 22050
    low = torch.sin(2 * torch.pi * 110 * t).expand(1, 2, -1)
    high = torch.sin(2 * torch.pi * 3520 * t).expand(1, 2, -1)
    with torch.no_grad():
        assert not torch.allclose(small.logits(low), small.logits(high), atol=1e-3)
    with pytest.raises(ValueError, match="unknown pooling"):
        build("convnext", preset="small", pool="max")
