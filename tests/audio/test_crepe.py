import numpy as np


def test_torchcrepe_peer_is_reproducible_and_leaves_numpy_alone(torchcrepe):
    """torchcrepe dithers its pitch with numpy's global generator: seeded, two runs agree; unseeded they differ."""
    from weakmir.audio.crepe import track_f0

    sr = 16000
    t = np.arange(sr) / sr
    x = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    np.random.seed(123)
    before = np.random.random(3)
    np.random.seed(123)
    _, a, _ = track_f0(x, sr, model="tiny")
    after = np.random.random(3)  # the caller's stream goes on as if torchcrepe had drawn nothing
    _, b, _ = track_f0(x, sr, model="tiny")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(before, after)
    assert np.median(np.abs(1200 * np.log2(a[10:-10] / 220))) < 20
    _, c, _ = track_f0(x, sr, model="tiny", seed=None)
    _, d, _ = track_f0(x, sr, model="tiny", seed=None)
    assert not np.array_equal(c, d)  # torchcrepe's own dither: why the seed
