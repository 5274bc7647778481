import numpy as np
import pytest

from weakmir.audio import io
from weakmir.errors import AudioError


@pytest.mark.parametrize("ext,subtype,tol", [(".wav", "FLOAT", 0), (".flac", "PCM_24", 2e-7), (".wav", "PCM_16", 4e-5)])
def test_roundtrip(tmp_path, rng, ext, subtype, tol):
    x = (0.5 * rng.standard_normal((2, 4410))).clip(-0.99, 0.99).astype(np.float32)
    p = io.save(tmp_path / f"a{ext}", x, 44100, subtype=subtype)
    y, sr = io.load(p)
    assert sr == 44100 and y.shape == (2, 4410) and y.dtype == np.float32
    assert np.abs(y - x).max() <= tol
    assert io.info(p) == (44100, 2, 4410)
    assert np.array_equal(io.read_segment(p, 100, 50), y[:, 100:150])
    # past the end is zero-padded
    seg = io.read_segment(p, 4400, 20)
    assert seg.shape == (2, 20) and np.all(seg[:, 10:] == 0)


@pytest.mark.parametrize("ext", [".ogg", ".mp3"])
def test_lossy_formats_read_back_close(tmp_path, ext):
    t = np.arange(44100) / 44100
    x = np.stack([0.5 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32)
    y, sr = io.load(io.save(tmp_path / f"a{ext}", x, 44100))
    assert sr == 44100 and y.shape[0] == 2
    # codecs add a delay: compare spectra, not samples
    spec = np.abs(np.fft.rfft(y[0, 4410:44100 - 4410]))
    assert abs(np.argmax(spec) * 44100 / (44100 - 8820) - 440) < 2
    assert np.sqrt(np.mean(y[0, 4410:-4410] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_resample_and_channels(tmp_path):
    t = np.arange(44100) / 44100
    x = np.sin(2 * np.pi * 1000 * t)[None].astype(np.float32)
    p = io.save(tmp_path / "m.wav", x, 44100, subtype="FLOAT")
    y, sr = io.load(p, sample_rate=16000, channels=2)
    assert sr == 16000 and y.shape == (2, 16000)
    assert np.array_equal(y[0], y[1])
    spec = np.abs(np.fft.rfft(y[0]))
    assert abs(np.argmax(spec) * 16000 / 16000 - 1000) <= 1
    assert io.to_channels(np.ones((2, 5), np.float32), 1).shape == (1, 5)
    with pytest.raises(AudioError, match="has 6 channels"):
        io.to_channels(np.ones((6, 5), np.float32), 2)


@pytest.mark.parametrize("sr", [44100, 16000])
def test_load_mono_streams_what_load_reads_whole(tmp_path, rng, sr):
    x = (0.2 * rng.standard_normal((2, 7 * sr + 11))).astype(np.float32)
    p = io.save(tmp_path / "s.flac", x, sr)
    whole = io.load(p, sample_rate=16000, channels=1)[0][0]
    got = io.load_mono(p, 16000, block_seconds=0.9)  # 8 blocks
    assert got.dtype == np.float32 and got.shape == whole.shape
    assert np.abs(got - whole).max() < 1e-6
    x[1, 3 * sr] = np.nan
    import soundfile as sf

    sf.write(tmp_path / "n.wav", x.T, sr, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"n\.wav: contains NaN"):
        io.load_mono(tmp_path / "n.wav", 16000, block_seconds=0.9)


def test_missing_corrupt_nan(tmp_path):
    with pytest.raises(AudioError, match=r"nope\.wav: no such audio file"):
        io.load(tmp_path / "nope.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(AudioError, match=r"bad\.wav: cannot decode audio"):
        io.load(bad)
    x = np.zeros((1, 100), np.float32)
    x[0, 5] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        io.save(tmp_path / "n.wav", x, 8000)
    assert not list(tmp_path.glob("*n.wav*"))  # nothing half-written
    io.save(tmp_path / "n2.wav", np.where(np.isnan(x), 0, x), 8000, subtype="FLOAT")
    # a NaN inside a float file is caught on read
    import soundfile as sf

    sf.write(tmp_path / "n3.wav", x.T, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"n3\.wav: contains NaN"):
        io.load(tmp_path / "n3.wav")


def test_save_refuses_clipping_and_unknown_ext(tmp_path):
    with pytest.raises(AudioError, match="would clip"):
        io.save(tmp_path / "c.wav", np.full((1, 10), 1.5, np.float32), 8000, subtype="PCM_16")
    with pytest.raises(AudioError, match="unknown audio extension"):
        io.save(tmp_path / "c.xyz", np.zeros((1, 10), np.float32), 8000)
    assert not any(tmp_path.iterdir())
