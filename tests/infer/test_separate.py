"""Chunked separation equals a whole-file run; checkpoints round-trip; the CLI writes one file per source."""

import numpy as np
import pytest
import soundfile as sf
import torch

from weakmir.audio.io import load, save
from weakmir.cli import main
from weakmir.errors import WeakmirError
from weakmir.infer.separate import separate_array, separate_file
from weakmir.models import build
from weakmir.train import checkpoint


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build("mask", sample_rate=16000, n_fft=512, hop_length=128, hidden=4, layers=2)
    return m.eval()


def test_shapes_and_mixture_consistency(model):
    x = torch.randn(2, 2, 4000)
    y = model(x)
    assert y.shape == (2, 4, 2, 4000)
    with pytest.raises(ValueError, match="expected"):
        model(torch.randn(2, 1, 4000))


def test_chunked_equals_whole(model, tmp_path):
    rng = np.random.default_rng(0)
    mix = (0.3 * rng.standard_normal((2, 16000 * 5))).astype(np.float32)
    with torch.no_grad():
        whole = model(torch.from_numpy(mix)[None])[0].numpy()
    ctx = model.receptive_field + 512
    arr = separate_array(model, mix, chunk=16000, overlap=2000, context=ctx)
    assert np.abs(arr - whole).max() < 1e-4
    path = save(tmp_path / "mix.wav", mix, 16000, subtype="FLOAT")
    files = separate_file(model, path, tmp_path / "out", chunk_seconds=1.3, overlap_seconds=0.2,
                          context_seconds=ctx / 16000)
    assert set(files) == {"vocals", "bass", "drums", "other"}
    got = np.stack([load(files[s])[0] for s in model.sources])
    assert got.shape == whole.shape and np.abs(got - whole).max() < 1e-4
    assert not list((tmp_path / "out").glob(".*"))  # temporary files were renamed


def test_checkpoint_round_trip_identical(model, tmp_path):
    kw = dict(sample_rate=16000, n_fft=512, hop_length=128, hidden=4, layers=2)
    p = checkpoint.save(tmp_path / "m.ckpt", model, kw, config={"lr": 1e-3})
    m2, meta = checkpoint.load(p)
    assert meta["model"] == "mask" and meta["kwargs"] == kw and meta["config"] == {"lr": 1e-3}
    x = torch.randn(1, 2, 3000)
    with torch.no_grad():
        assert torch.equal(model(x), m2(x))
    (tmp_path / "bad.ckpt").write_bytes(b"nope")
    with pytest.raises(WeakmirError, match="cannot read checkpoint"):
        checkpoint.load(tmp_path / "bad.ckpt")
    with pytest.raises(WeakmirError, match="no such checkpoint"):
        checkpoint.load(tmp_path / "missing.ckpt")


def test_cli_separate(tmp_path, capsys):
    rng = np.random.default_rng(1)
    save(tmp_path / "song.flac", (0.2 * rng.standard_normal((1, 44100 * 2))).astype(np.float32), 44100)
    assert main(["separate", "mask", str(tmp_path / "song.flac"), "-o", str(tmp_path / "sep"),
                 "--chunk-seconds", "1", "--overlap-seconds", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "weakmir separate:" in out
    for s in ("vocals", "bass", "drums", "other"):
        info = sf.info(str(tmp_path / "sep" / "song" / f"{s}.wav"))
        assert info.channels == 2 and info.frames == 88200  # mono input upmixed to the model's 2 channels
    save(tmp_path / "take.2.v1.flac", np.zeros((2, 4410), np.float32) + 0.01, 44100)
    assert main(["separate", "mask", str(tmp_path / "take.2.v1.flac"), "-o", str(tmp_path / "sep")]) == 0
    assert (tmp_path / "sep" / "take.2.v1" / "bass.wav").exists()  # dotted names are kept whole
    assert main(["separate", "mask", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "x")]) == 2
    assert main(["separate", str(tmp_path / "no.ckpt"), str(tmp_path / "song.flac"), "-o", str(tmp_path / "x")]) == 2


def test_loudness_normalised_separation(model, tmp_path):
    from weakmir.audio.loudness import integrated_loudness

    rng = np.random.default_rng(2)
    mix = (0.05 * rng.standard_normal((2, 16000 * 3))).astype(np.float32)
    path = save(tmp_path / "quiet.wav", mix, 16000, subtype="FLOAT")
    files = separate_file(model, path, tmp_path / "o", chunk_seconds=1.0, overlap_seconds=0.25,
                          context_seconds=0.2, normalize_lufs=-14.0)
    got = np.stack([load(files[s])[0] for s in model.sources])
    g = 10 ** ((-14.0 - integrated_loudness(mix, 16000)) / 20)
    want = separate_array(model, (mix * g).astype(np.float32), chunk=16000, overlap=4000, context=3200) / g
    assert np.abs(got - want).max() < 1e-4


@pytest.mark.parametrize("role", ["voice_separator", "voice_pitch"])
def test_a_majl_voice_separator_separates_into_the_voice_and_the_rest(role, tmp_path, capsys):
    """MAJL's MSS (alone, or inside a majl_jcf) through weakmir separate: vocals.wav is the module's own
    estimate of the 16 kHz mono mixture, accompaniment.wav the mixture minus it."""
    torch.manual_seed(0)
    mss_kw = {"channels": [4, 8]}
    if role == "voice_separator":
        m = build("unet_jansson", **mss_kw)
    else:
        m = build("majl_jcf", mss="unet_jansson", mss_kwargs=mss_kw, pe="crepe", pe_kwargs={"capacity": 1})
    ckpt = checkpoint.save(tmp_path / "v.ckpt", m, m.kwargs())
    rng = np.random.default_rng(1)
    sf.write(str(tmp_path / "song.wav"), (0.2 * rng.standard_normal((3 * 22050, 2))).astype(np.float32), 22050)
    assert main(["separate", str(ckpt), str(tmp_path / "song.wav"), "-o", str(tmp_path / "o")]) == 0
    assert "(vocals, accompaniment)" in capsys.readouterr().out
    v, sr = sf.read(str(tmp_path / "o" / "song" / "vocals.wav"))
    acc, _ = sf.read(str(tmp_path / "o" / "song" / "accompaniment.wav"))
    x = load(tmp_path / "song.wav", 16000, 1)[0][0]
    assert sr == 16000 and v.shape == acc.shape == x.shape
    assert np.abs(v + acc - x).max() < 1e-5  # the two sum to the (resampled, mono) mixture
    mss = (m if role == "voice_separator" else m.mss).eval()
    with torch.no_grad():
        whole = mss(torch.from_numpy(x)[None])["wave"][0].numpy()
    assert np.abs(v).max() > 1e-3 and np.abs(v - whole).max() < 1e-3  # the module's estimate, not the mixture


def test_a_voice_separator_chunked_equals_its_whole_signal_run():
    """VoiceAndRest starts chunks on the U-Net's frame grid (hop x 2 ** depth): off that grid a strided
    U-Net's output changes with where a chunk starts (a seam of ~-50 dB)."""
    from weakmir.infer.separate import as_separator

    torch.manual_seed(0)
    unet = build("unet_jansson", channels=[4, 8, 8]).eval()
    sep = as_separator(unet)
    assert sep.stride == 320 * 8
    mix = (0.1 * np.random.default_rng(2).standard_normal((1, int(4.3 * 16000)))).astype(np.float32)
    got = separate_array(sep, mix, chunk=16000, overlap=3200, context=16000)
    with torch.no_grad():
        whole = unet(torch.from_numpy(mix))["wave"][0].numpy()
    assert np.abs(got[0, 0] - whole).max() < 1e-5 and np.abs(got[1, 0] - (mix[0] - whole)).max() < 1e-5
