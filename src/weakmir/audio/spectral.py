"""STFT / iSTFT helpers in torch, and frequency-axis conversions.

Shapes: time signals ``(..., time)``; spectrograms ``(..., freq, frames)``
with ``freq = n_fft // 2 + 1``. Frames are centred (``center=True``), so
frame ``k`` is centred at sample ``k * hop_length``.

Windows: ``"hann"`` (periodic) or ``"sqrt_hann"`` (square-root Hann, the
analysis/synthesis pair of score-supervised_hung2021 §3.2). Both reconstruct
exactly through :func:`istft` when ``hop_length <= n_fft // 2`` for hann and
``n_fft // 2`` for sqrt_hann (torch normalises by the summed squared window).
"""

from __future__ import annotations

import functools

import numpy as np
import torch


@functools.lru_cache(maxsize=32)
def _window64(kind: str, n_fft: int) -> torch.Tensor:
    if kind not in ("hann", "sqrt_hann"):
        raise ValueError(f"unknown window {kind!r}; use 'hann' or 'sqrt_hann'")
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    return torch.from_numpy(np.sqrt(w) if kind == "sqrt_hann" else w)


def window(kind: str, n_fft: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The analysis window, shape ``(n_fft,)``: periodic Hann or its square root.

    Computed in float64 with numpy and cached, not with ``torch.hann_window``:
    in the torch 2.13 CPU build, the first ``hann_window`` call of a process
    is off by up to 7.6e-5 in about one process in four (a first-call race in
    its kernel), which made whole spectrograms, and STFT round trips, differ
    from run to run.
    """
    return _window64(kind, int(n_fft)).to(device=device, dtype=dtype)


def stft(
    x: torch.Tensor,
    n_fft: int = 2048,
    hop_length: int = 512,
    window_kind: str = "hann",
) -> torch.Tensor:
    """Complex STFT.

    Shape:
        x: ``(..., time)``  ->  ``(..., n_fft // 2 + 1, frames)`` complex,
        ``frames = time // hop_length + 1``.
    """
    x = torch.as_tensor(x)
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    w = window(window_kind, n_fft, device=flat.device, dtype=flat.dtype)
    X = torch.stft(flat, n_fft, hop_length, window=w, center=True, return_complex=True, pad_mode="constant")
    return X.reshape(*lead, X.shape[-2], X.shape[-1])


def istft(
    X: torch.Tensor,
    n_fft: int = 2048,
    hop_length: int = 512,
    window_kind: str = "hann",
    length: int | None = None,
) -> torch.Tensor:
    """Inverse of :func:`stft`.

    Shape:
        X: ``(..., freq, frames)`` complex  ->  ``(..., length)``.
    """
    lead = X.shape[:-2]
    flat = X.reshape(-1, X.shape[-2], X.shape[-1])
    w = window(window_kind, n_fft, device=flat.device, dtype=flat.real.dtype)
    y = torch.istft(flat, n_fft, hop_length, window=w, center=True, length=length)
    return y.reshape(*lead, y.shape[-1])


def magnitude(x: torch.Tensor, n_fft: int = 2048, hop_length: int = 512, window_kind: str = "hann") -> torch.Tensor:
    """Linear magnitude spectrogram, ``(..., time) -> (..., freq, frames)``."""
    return stft(x, n_fft, hop_length, window_kind).abs()


def n_frames(n_samples: int, hop_length: int) -> int:
    """Number of centred STFT frames for a signal of ``n_samples``."""
    return n_samples // hop_length + 1


def frame_times(frames: int, hop_length: int, sample_rate: int) -> np.ndarray:
    """Centre time (s) of each of ``frames`` centred frames, shape ``(frames,)``."""
    return np.arange(frames) * hop_length / float(sample_rate)


def fft_frequencies(sample_rate: int, n_fft: int) -> np.ndarray:
    """Centre frequency (Hz) of each STFT bin, shape ``(n_fft // 2 + 1,)``."""
    return np.arange(n_fft // 2 + 1) * sample_rate / float(n_fft)


def hz_to_bin(freq_hz, sample_rate: int, n_fft: int):
    """Nearest STFT bin index of a frequency (Hz); arrays broadcast."""
    return np.rint(np.asarray(freq_hz) * n_fft / float(sample_rate)).astype(int)


def midi_to_hz(pitch, tuning_hz: float = 440.0, tuning_midi: float = 69.0):
    """``f0 = f_q * 2 ** ((n - n_q) / 12)`` (score-supervised_hung2021 §2.2)."""
    return tuning_hz * np.power(2.0, (np.asarray(pitch, dtype=float) - tuning_midi) / 12.0)


def hz_to_midi(freq_hz, tuning_hz: float = 440.0):
    """Fractional MIDI pitch of a frequency; ``nan`` for f <= 0."""
    f = np.asarray(freq_hz, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(f > 0, 69.0 + 12.0 * np.log2(f / tuning_hz), np.nan)


def db(x, floor: float = 1e-12):
    """``20 log10(max(x, floor))``."""
    return 20.0 * np.log10(np.maximum(np.asarray(x, dtype=float), floor))


__all__ = [
    "window", "stft", "istft", "magnitude", "n_frames", "frame_times", "fft_frequencies",
    "hz_to_bin", "midi_to_hz", "hz_to_midi", "db",
]
