import numpy as np
import pytest

from weakmir.audio import effects
from weakmir.audio.loudness import integrated_loudness

SR = 44100


@pytest.fixture
def stereo(rng):
    t = np.arange(2 * SR) / SR
    env = (np.sin(2 * np.pi * 2 * t) > 0).astype(np.float32)  # gated: something to compress
    left = 0.5 * np.sin(2 * np.pi * 220 * t) * env
    right = 0.3 * np.sin(2 * np.pi * 330 * t) * env
    return np.stack([left, right]).astype(np.float32)


def test_stereo_image_identity_and_mono():
    x = np.random.default_rng(0).standard_normal((2, 1000)).astype(np.float32)
    assert np.allclose(effects.stereo_image(x, width=1.0, pan=0.0), x, atol=1e-6)
    m = effects.stereo_image(x, width=0.0, pan=0.0)
    assert np.allclose(m[0], m[1]) and np.allclose(m[0], x.mean(0), atol=1e-6)
    hard_left = effects.stereo_image(x, width=1.0, pan=-1.0)
    assert np.allclose(hard_left[1], 0, atol=1e-6)
    mono = x[:1]
    assert effects.stereo_image(mono, 0.5, 0.3) is not None and effects.stereo_image(mono, 0.5, 0.3).shape == (1, 1000)


@pytest.mark.parametrize("backend", ["pedalboard", "numpy"])
def test_chain_is_seeded_and_shape_preserving(stereo, backend):
    cfg = effects.EffectsConfig(backend=backend)
    y1, p1 = effects.random_chain(stereo, SR, np.random.default_rng(7), cfg)
    y2, p2 = effects.random_chain(stereo, SR, np.random.default_rng(7), cfg)
    y3, _ = effects.random_chain(stereo, SR, np.random.default_rng(8), cfg)
    assert y1.shape == stereo.shape and y1.dtype == np.float32
    assert p1 == p2 and np.array_equal(y1, y2)
    assert not np.array_equal(y1, y3)


@pytest.mark.parametrize("backend", ["pedalboard", "numpy"])
def test_each_effect_does_its_job(stereo, backend):
    # compression lowers the level of a loud signal above threshold
    c = effects.compress(stereo, SR, threshold_db=-30, ratio=8, attack_ms=1, release_ms=50, backend=backend)
    assert np.sqrt(np.mean(c**2)) < 0.7 * np.sqrt(np.mean(stereo**2))
    # reverb fills the gated gaps with a tail
    gap = slice(int(0.27 * SR), int(0.32 * SR))  # just after the first gate closes (off 0.25..0.5 s)
    r = effects.reverb(stereo, SR, room_size=0.8, damping=0.3, wet_level=0.5, backend=backend)
    assert np.abs(stereo[:, gap]).max() == 0 and np.abs(r[:, gap]).max() > 1e-4
    # loudness sets the integrated loudness
    lo = effects.set_loudness(stereo, SR, -20.0)
    assert integrated_loudness(lo, SR) == pytest.approx(-20.0, abs=0.1)


def test_order_and_skips(stereo):
    p = {"compressor": None, "reverb": None, "imaging": {"width": 0.0, "pan": 0.0}, "loudness": None}
    y = effects.apply_chain(stereo, SR, p)
    assert np.allclose(y[0], y[1])  # only imaging ran: mono
    p["loudness"] = {"lufs": -18.0}
    assert integrated_loudness(effects.apply_chain(stereo, SR, p), SR) == pytest.approx(-18.0, abs=0.1)
    with pytest.raises(ValueError, match="unknown effects backend"):
        effects.EffectsConfig(backend="sox")


def test_block_delay_recursion_equals_iir_filter():
    import scipy.signal

    x = np.random.default_rng(0).standard_normal((2, 5000))
    for d, b0, bd, a in ((37, -0.5, 1.0, 0.5), (1, 0.0, 1.0, 0.9), (4999, 0.3, 1.0, 0.2)):
        b = np.zeros(d + 1)
        b[0], b[d] = b0, bd
        den = np.zeros(d + 1)
        den[0], den[d] = 1.0, -a
        assert np.allclose(effects._delay_recursion(x, d, b0, bd, a), scipy.signal.lfilter(b, den, x, axis=-1))


def test_tilt_gains_follow_octaves_above_the_corner_and_keep_the_level():
    sr, n = 16000, 16000
    t = np.arange(n) / sr
    tones = {f: np.sin(2 * np.pi * f * t) for f in (250.0, 500.0, 1000.0, 4000.0)}
    x = sum(tones.values()).astype(np.float32)[None]
    y = effects.tilt(x, sr, -6.0)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.sqrt(np.mean(y ** 2)) == pytest.approx(np.sqrt(np.mean(x ** 2)), rel=1e-4)
    amp = {f: 2 * abs(np.fft.rfft(y[0])[int(f)]) / n for f in tones}  # 1-Hz bins: exact per tone
    assert amp[250.0] == pytest.approx(amp[500.0], rel=1e-4)  # flat below the corner
    assert 20 * np.log10(amp[1000.0] / amp[500.0]) == pytest.approx(-6.0, abs=0.01)  # one octave
    assert 20 * np.log10(amp[4000.0] / amp[500.0]) == pytest.approx(-18.0, abs=0.01)  # three octaves
    assert np.array_equal(effects.tilt(x, sr, 0.0), x)
