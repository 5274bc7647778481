import numpy as np
import pytest

from weakmir.audio.loudness import integrated_loudness, normalize_loudness
from weakmir.errors import AudioError

SR = 44100


def test_normalize_to_target(rng):
    x = (0.05 * rng.standard_normal((2, 3 * SR))).astype(np.float32)
    for target in (-14.0, -23.0):
        y = normalize_loudness(x, SR, target)
        assert integrated_loudness(y, SR) == pytest.approx(target, abs=0.05)
        # pure gain: the waveform shape is unchanged
        assert np.allclose(y / np.abs(y).max(), x / np.abs(x).max(), atol=1e-5)


def test_sine_reference_level():
    # BS.1770: a 997 Hz full-scale sine in one channel reads -3.01 LUFS; in both, 0 LUFS
    t = np.arange(2 * SR) / SR
    s = np.sin(2 * np.pi * 997 * t).astype(np.float32)
    assert integrated_loudness(np.stack([s, np.zeros_like(s)]), SR) == pytest.approx(-3.01, abs=0.1)


def test_silence_and_short_raise():
    with pytest.raises(AudioError, match="silent"):
        normalize_loudness(np.zeros((2, SR), np.float32), SR, name="quiet.wav")
    with pytest.raises(AudioError, match="shorter than the 0.4 s"):
        integrated_loudness(np.ones((1, 100), np.float32), SR)


def test_streamed_file_loudness_equals_pyloudnorm(tmp_path, rng):
    from weakmir.audio.io import save
    from weakmir.audio.loudness import file_loudness

    t = np.arange(13 * SR) / SR
    env = 0.05 + 0.5 * (np.sin(2 * np.pi * 0.2 * t) > 0)  # loud and quiet parts: both gates matter
    x = (env * rng.standard_normal((2, len(t))) * 0.1).astype(np.float32)
    x[:, 5 * SR:6 * SR] = 0  # a silent second
    p = save(tmp_path / "a.wav", x, SR, subtype="FLOAT")
    assert file_loudness(p, segment_seconds=1.7) == pytest.approx(integrated_loudness(x, SR), abs=1e-6)
