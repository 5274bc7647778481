import numpy as np
import pytest
import torch

from weakmir.models import build
from weakmir.train import checkpoint

SMALL = dict(n_fft=256, hop_length=128, channels=16, hidden=24, repeats=2, blocks=3)


def test_shape_contracts_of_the_three_heads():
    torch.manual_seed(0)
    sep, tr, cl = (build(n, **SMALL) for n in ("tcn_separator", "tcn_transcriptor", "tcn_classifier"))
    x = torch.randn(2, 1, 16000)
    X = sep.spectrogram(x).abs()
    assert X.shape == (2, 129, 16000 // 128 + 1)
    assert tr(X).shape == (2, 3, 88, X.shape[-1]) and cl(X).shape == (2, 3, X.shape[-1])
    M = sep.masks(X)
    assert M.shape == (2, 3, 129, X.shape[-1]) and float(M.detach().min()) >= 0 and float(M.detach().max()) <= 1
    assert torch.allclose(sep.separate_magnitude(X), M * X.unsqueeze(1))
    y = sep(x)
    assert y.shape == (2, 3, 1, 16000) and sep.sources == ["piano", "guitar", "bass"]
    with pytest.raises(ValueError, match="mono"):
        sep(torch.randn(1, 2, 1000))
    with pytest.raises(ValueError, match="magnitude spectrogram"):
        tr(torch.rand(1, 100, 10))


def test_paper_body_is_three_repeats_of_eight_blocks():
    m = build("tcn_transcriptor", n_fft=2048)
    assert len(m.tcn.blocks) == 24 and m.tcn.receptive_frames == 1 + 3 * 2 * 255
    dil = [b.net[3].dilation[0] for b in m.tcn.blocks]
    assert dil == [1, 2, 4, 8, 16, 32, 64, 128] * 3 and all(b.net[3].kernel_size == (3,) for b in m.tcn.blocks)


def test_output_frames_depend_only_on_their_receptive_field_and_own_example():
    torch.manual_seed(0)
    m = build("tcn_transcriptor", **SMALL).eval()
    r = (m.tcn.receptive_frames - 1) // 2  # 2 repeats * (2**3 - 1) = 14 frames each side
    X = torch.rand(2, 129, 60)
    Y = X.clone()
    Y[0, :, 40] += 5.0
    with torch.no_grad():
        a, b = m(X), m(Y)
    changed = (a - b).abs().amax(dim=(1, 2))[0] > 0
    assert changed[40 - r:40 + r + 1].all() and not changed[:40 - r].any() and not changed[40 + r + 1:].any()
    assert torch.equal(a[1], b[1])  # no cross-talk inside a batch


@pytest.mark.parametrize("name", ["tcn_transcriptor", "tcn_classifier", "tcn_separator"])
def test_a_quiet_input_reads_as_near_silence_not_as_a_louder_one(name):
    # the critics must hear the level: a separated source that keeps -60 dB of another instrument should read
    # (almost) as silence for it. A per-frame input normalisation reads the quiet copy like the loud one.
    torch.manual_seed(0)
    m = build(name, **SMALL).eval()
    head = m.logits if hasattr(m, "logits") else m.masks
    X = torch.rand(1, 129, 40) * 0.5
    with torch.no_grad():
        loud, quiet, silent = head(X), head(X * 1e-3), head(torch.zeros_like(X))
    assert (quiet - silent).abs().mean() < 0.05 * (loud - silent).abs().mean()


def test_separator_checkpoint_reloads_to_identical_output(tmp_path):
    torch.manual_seed(1)
    m = build("tcn_separator", **SMALL).eval()
    x = torch.randn(1, 1, 8000)
    p = checkpoint.save(tmp_path / "sep.ckpt", m, m.kwargs())
    again, meta = checkpoint.load(p)
    with torch.no_grad():
        assert torch.equal(again(x), m(x))
    assert meta["model"] == "tcn_separator"
    np.testing.assert_array_equal(m.kwargs()["instruments"], ["piano", "guitar", "bass"])
