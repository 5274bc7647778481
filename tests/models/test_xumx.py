import numpy as np
import pytest
import torch

from weakmir.models import build
from weakmir.train import checkpoint


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build("xumx", n_fft=512, hop_length=128, hidden=32, layers=2, sample_rate=16000).eval()


def test_shape_batch_independence_and_size(model):
    x = torch.randn(3, 2, 8000)
    with torch.no_grad():
        y = model(x)
        one = model(x[1:2])
    assert y.shape == (3, 4, 2, 8000)
    assert torch.allclose(y[1:2], one, atol=1e-5)
    paper = build("xumx", hidden=512, n_fft=4096, hop_length=1024)
    assert 35e6 < sum(p.numel() for p in paper.parameters()) < 36.5e6  # four Open-Unmix branches
    with pytest.raises(ValueError, match="expected"):
        model(torch.randn(1, 1, 100))


def test_bridges_couple_the_sources(model):
    """Changing source 0's fc1 changes source 1's estimate (through the averaged features)."""
    x = torch.randn(1, 2, 8000)
    with torch.no_grad():
        before = model(x)
        model.branches[0].fc1[0].weight.add_(0.5)
        after = model(x)
    assert not torch.allclose(before[:, 1], after[:, 1])


def test_checkpoint_and_tf_loss_training(tmp_path, pop_corpus):
    from weakmir.methods import self_refine as sr

    torch.manual_seed(0)
    m = build("xumx", n_fft=512, hop_length=128, hidden=32, layers=1)
    p = checkpoint.save(tmp_path / "x.ckpt", m.eval(), {"n_fft": 512, "hop_length": 128, "hidden": 32, "layers": 1})
    again, _ = checkpoint.load(p)
    x = torch.randn(1, 2, 4000)
    with torch.no_grad():
        assert torch.equal(m(x), again(x))
    _, man, _, _ = pop_corpus
    cfg = sr.SeparatorConfig(model="xumx", model_kwargs={"n_fft": 512, "hop_length": 128, "hidden": 32, "layers": 1},
                             steps=24, batch_size=2, seconds=1.0, examples_per_epoch=48, effects=False,
                             splits=("train", "valid", "test"), lr=3e-3)
    _, _, hist = sr.train_separator(man, cfg)
    assert np.mean(hist.losses[-6:]) < np.mean(hist.losses[:6])
