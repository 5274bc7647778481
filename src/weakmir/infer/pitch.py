"""Singing-voice f0 (and the separated voice) of audio files of any length, with a MAJL checkpoint or torchcrepe.

    r = pitch_file(jcf, "song.wav", "out/song")
    # out/song/f0.csv       time_s, f0_hz (0 = unvoiced), confidence  (one row per 20-ms frame)
    # out/song/vocals.wav   the separated voice (16 kHz mono), majl_jcf checkpoints only
    # out/song/f0.png       the f0 over the spectrogram of the mixture

The model is a ``majl_jcf`` (``voice_pitch``: the voice is separated, then tracked) or a MAJL PE module on
its own (``pitch_estimator``, e.g. a pipeline's ``pipeline_pe.ckpt``: the file is tracked as it is, as a
clean voice — how that module was trained; :class:`OnInput`).

A file is read mono at 16 kHz (the models' rate) and run in chunks of ``chunk_seconds`` with at least one
second of context on each side, on the separator's frame grid (:func:`run`): the models' memory does not
grow with the length; the file, its f0 vectors and the voice do, ~11 MB a minute
(``benchmarks/bench_pitch.py``).
The f0 is the pitch vectors decoded along their Viterbi path (torchcrepe's transition: ±240 cents; the
local weighted mean around the path's bin), voiced when the maximum is at least ``threshold``; the confidence is the maximum. With ``crepe`` (no
checkpoint), torchcrepe's pretrained ``tiny`` or ``full`` model tracks the mixture as it is (Viterbi
decoding, its periodicity as the confidence, voiced from ``threshold``); nothing is separated.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from ..audio.io import load_mono, save
from ..audio.spectral import stft
from ..errors import WeakmirError
from ..files import atomic_write_bytes, atomic_write_text
from ..models.voice_sep import HOP, N_FFT, SAMPLE_RATE  # the MSS modules' front end (16 kHz, Hann 2048, hop 320)

OUTPUTS = ("f0.csv", "f0.png")
ROLES = ("voice_pitch", "pitch_estimator")  # the checkpoints weakmir pitch reads
FIGURE_FMAX, FIGURE_COLUMNS = 2000.0, 2000  # f0.png: the spectrogram up to 2 kHz, at most 2000 columns


class OnInput(torch.nn.Module):
    """A PE module reading its input as the voice (no separation), with the ``majl_jcf`` forward that
    :func:`run` takes; its magnitude is the MSS modules' STFT (Hann 2048, hop 320).

    Shape: ``forward(mix (B, L)) -> {"wave": (B, L) the input, "pitch": (B, T, N)}``, ``T = L // 320 + 1``.
    """

    frame_multiple = 1  # the PE modules are frame-shift equivariant (no strided layer along time)

    def __init__(self, pe: torch.nn.Module):
        super().__init__()
        self.pe = pe
        self.sample_rate, self.hop_length = pe.sample_rate, pe.hop_length

    @property
    def grid(self):
        return self.pe.grid

    def forward(self, mix: torch.Tensor) -> dict:
        return {"wave": mix, "pitch": self.pe(mix, stft(mix, N_FFT, self.hop_length).abs())}


def as_tracker(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` as :func:`run` takes it: a ``majl_jcf`` as it is, a ``pitch_estimator`` in
    :class:`OnInput` (eval mode)."""
    role = getattr(model, "role", None)
    if role not in ROLES:
        raise WeakmirError(f"a {role} model does not track pitch; give one of {', '.join(ROLES)}")
    return model if role == "voice_pitch" else OnInput(model).eval()


def outputs(model) -> tuple[str, ...]:
    """The files :func:`pitch_file` writes per input for ``model`` (a checkpoint's model or ``"crepe"``)."""
    return (*OUTPUTS, "vocals.wav") if getattr(model, "role", None) == "voice_pitch" else OUTPUTS


@torch.no_grad()
def run(jcf: torch.nn.Module, mix: np.ndarray, chunk_seconds: float = 10.0, device: str = "cpu") -> dict:
    """The JCF on a whole signal in chunks (each padded by at least one second of context), each chunk on
    ``device`` (where the model is). Chunks and context are multiples of ``hop · frame_multiple`` samples, the
    grid on which the MSS module's output does not depend on where a chunk starts, so with a context longer
    than its receptive field the result is the whole-signal run's (tested).

    Shape: ``mix (L,)`` -> ``{"wave": (L,), "pitch": (T, N)}`` numpy, ``T = L // hop + 1``.
    """
    jcf.eval()
    hop = jcf.hop_length
    L = len(mix)
    T = L // hop + 1
    step = hop * int(getattr(jcf, "frame_multiple", 1))
    chunk = max(int(chunk_seconds * jcf.sample_rate) // step, 1) * step
    ctx = -(-jcf.sample_rate // step) * step
    wave = np.zeros(L, np.float32)
    pitch = None
    x = torch.from_numpy(np.asarray(mix, np.float32))
    for s in range(0, L, chunk):
        a, b = max(s - ctx, 0), min(s + chunk + ctx, L)
        out = jcf(x[a:b][None].to(device))
        e = min(s + chunk, L)
        wave[s:e] = out["wave"][0, s - a:e - a].cpu().numpy()
        p = out["pitch"][0].cpu().numpy()
        if pitch is None:
            pitch = np.zeros((T, p.shape[-1]), np.float32)
        f0_, f1_ = s // hop, min(e // hop + (1 if e == L else 0), T)
        pitch[f0_:f1_] = p[f0_ - a // hop:f1_ - a // hop]
    return {"wave": wave, "pitch": pitch}


def write_f0_csv(path, times, f0, confidence) -> Path:
    """``time_s,f0_hz,confidence`` rows (f0 0 = unvoiced), atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["time_s", "f0_hz", "confidence"])
    for t, f, c in zip(times, f0, confidence):
        w.writerow([f"{t:.3f}", f"{f:.3f}", f"{c:.4f}"])
    return atomic_write_text(path, buf.getvalue())


def display_magnitude(mix: np.ndarray, fmax: float = FIGURE_FMAX, columns: int = FIGURE_COLUMNS,
                      block_seconds: float = 60.0) -> tuple[np.ndarray, int]:
    """The magnitude spectrogram a figure shows, in memory bounded whatever the length: the MSS modules'
    STFT (Hann 2048, hop 320) up to ``fmax`` Hz, its frames max-pooled in groups of ``k`` so that at most
    ``columns`` remain (a figure is ~1000 pixels wide), computed ``block_seconds`` at a time (with 4 hops
    of context, so every frame is the whole-signal STFT's). A 10-minute file's full spectrogram took 2.5 GB
    in the figure alone.

    Shape: ``mix (L,)`` -> ``((bins, ceil(T / k)) float32, k)``, ``T = L // 320 + 1``, ``bins`` the STFT bins
    at or below ``fmax``.
    """
    L, T = len(mix), len(mix) // HOP + 1
    bins = int(fmax / (SAMPLE_RATE / N_FFT)) + 1
    k = -(-T // columns)
    block = max(int(block_seconds * SAMPLE_RATE / HOP) // k, 1) * k  # frames per block, a multiple of k
    ctx = 4 * HOP  # >= N_FFT // 2 and on the hop grid
    x = torch.from_numpy(np.asarray(mix, np.float32))
    out = []
    for f0 in range(0, T, block):
        f1 = min(f0 + block, T)
        a, b = max(f0 * HOP - ctx, 0), min((f1 - 1) * HOP + ctx + 1, L)
        mag = stft(x[a:b], N_FFT, HOP)[:bins].abs()  # (bins, frames of the segment)
        first = (f0 * HOP - a) // HOP
        mag = mag[:, first:first + (f1 - f0)]
        pad = (-mag.shape[1]) % k
        if pad:
            mag = torch.nn.functional.pad(mag, (0, pad))
        out.append(mag.reshape(bins, -1, k).amax(-1))
    return torch.cat(out, dim=1).numpy(), k


def _figure(mix: np.ndarray, f0: np.ndarray, title: str) -> bytes:
    from ..report.figures import pitch_over_spectrogram

    mag, k = display_magnitude(mix)
    return pitch_over_spectrogram(mag, f0, SAMPLE_RATE, HOP, title, fmax=FIGURE_FMAX, n_fft=N_FFT, pooled=k)


def pitch_file(model, path, out_dir, chunk_seconds: float = 10.0, threshold: float = 0.5, crepe_model: str = "tiny",
               device: str = "cpu") -> dict:
    """f0 (and voice) of one file into ``out_dir`` (module docstring). ``model``: a ``majl_jcf``, a
    ``pitch_estimator`` or ``"crepe"``.

    Returns ``{"frames": T, "voiced": fraction, "files": [...]}``.
    """
    from ..models.pitch_nets import decode

    out_dir = Path(out_dir)
    mix = load_mono(path, SAMPLE_RATE)
    files = []
    if isinstance(model, str):
        from ..audio.crepe import track_f0

        times, f0, conf = track_f0(mix, SAMPLE_RATE, hop_seconds=HOP / SAMPLE_RATE, model=crepe_model, device=device)
        f0 = np.where(conf >= threshold, f0, 0.0)
        title = f"{Path(path).name}: torchcrepe {crepe_model} (pretrained)"
    else:
        separates = model.role == "voice_pitch"
        r = run(as_tracker(model).to(device), mix, chunk_seconds, device)
        probs = torch.from_numpy(r["pitch"])
        f0_t, _ = decode(probs, model.grid, threshold, viterbi=True)
        f0, conf = f0_t.numpy(), probs.max(-1).values.numpy()
        times = np.arange(len(f0)) * HOP / SAMPLE_RATE
        if separates:
            save(out_dir / "vocals.wav", r["wave"][None], SAMPLE_RATE)
            files.append("vocals.wav")
        title = (f"{Path(path).name}: {model.mss_name} + {model.pe_name}" if separates
                 else f"{Path(path).name}: {model.registry_name} on the input as it is")
    write_f0_csv(out_dir / "f0.csv", times, f0, conf)
    atomic_write_bytes(out_dir / "f0.png", _figure(mix, f0, title))
    return {"frames": int(len(f0)), "voiced": float(np.mean(f0 > 0)) if len(f0) else 0.0,
            "files": ["f0.csv", "f0.png", *files]}


__all__ = ["SAMPLE_RATE", "OUTPUTS", "ROLES", "OnInput", "as_tracker", "outputs", "run", "write_f0_csv", "display_magnitude",
           "pitch_file"]
