"""Loudness (ITU-R BS.1770 integrated LUFS) with pyloudnorm.

Audio is ``(channels, time)``. pyloudnorm needs at least one 400 ms gating
block; shorter or silent signals have no defined loudness and raise.
"""

from __future__ import annotations

import numpy as np
import pyloudnorm

from ..errors import AudioError
from .io import decode_error

DEFAULT_LUFS = -14.0
_METERS: dict[int, pyloudnorm.Meter] = {}


def _meter(sample_rate: int) -> pyloudnorm.Meter:
    m = _METERS.get(sample_rate)
    if m is None:
        m = _METERS[sample_rate] = pyloudnorm.Meter(sample_rate)
    return m


def integrated_loudness(x: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS; ``-inf`` when every block is gated out (silence).

    Shape:
        x: ``(channels, time)`` with ``time >= 0.4 * sample_rate``.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if x.shape[-1] < int(0.4 * sample_rate) + 1:
        raise AudioError(f"signal of {x.shape[-1] / sample_rate:.3f} s is shorter than the 0.4 s loudness block; use a longer excerpt")
    with np.errstate(divide="ignore"):
        return float(_meter(sample_rate).integrated_loudness(x.T))


def normalize_loudness(x: np.ndarray, sample_rate: int, target_lufs: float = DEFAULT_LUFS, name: str = "signal") -> np.ndarray:
    """Scale ``x`` so its integrated loudness is ``target_lufs`` (default −14 LUFS).

    Raises:
        AudioError: the signal is silent (loudness undefined).
    """
    lufs = integrated_loudness(x, sample_rate)
    if not np.isfinite(lufs):
        raise AudioError(f"{name}: is silent, loudness is undefined; drop it or trim silence first")
    gain = 10.0 ** ((target_lufs - lufs) / 20.0)
    return (np.asarray(x) * gain).astype(np.float32)


def file_loudness(path, segment_seconds: float = 30.0) -> float:
    """Integrated loudness (LUFS) of an audio file, streamed in segments (bounded memory).

    The same computation as pyloudnorm's ``Meter.integrated_loudness`` (its
    K-weighting filters, 400 ms blocks with 75 % overlap, absolute and relative
    gates), with the filter state carried across segments and the block
    energies taken from running sums, so the whole file is never in memory.
    """
    import scipy.signal
    import soundfile as sf

    try:
        f = sf.SoundFile(str(path))
    except Exception as e:
        raise decode_error(path, e) from e
    with f:
        sr, C, N = f.samplerate, f.channels, f.frames
        T_g, step = 0.4, 0.25
        if N < int(T_g * sr) + 1:
            raise AudioError(f"{path}: shorter than the 0.4 s loudness block")
        stages = [(flt.passband_gain, np.asarray(flt.b, float), np.asarray(flt.a, float)) for flt in _meter(sr)._filters.values()]
        zi = [np.zeros((max(len(a), len(b)) - 1, C)) for _, b, a in stages]
        n_blocks = int(np.round(((N / sr - T_g) / (T_g * step)))) + 1
        lo = np.array([int(T_g * (j * step) * sr) for j in range(n_blocks)])
        hi = np.minimum(np.array([int(T_g * (j * step + 1) * sr) for j in range(n_blocks)]), N)
        needed = np.unique(np.concatenate([lo, hi]))
        cum = {}
        running, pos = np.zeros(C), 0
        seg = int(segment_seconds * sr)
        while pos < N:
            x = f.read(min(seg, N - pos), dtype="float64", always_2d=True)
            if not np.isfinite(x).all():
                raise AudioError(f"{path}: contains NaN or infinite samples; repair the file")
            for k, (gain, b, a) in enumerate(stages):
                y, zi[k] = scipy.signal.lfilter(b, a, x, axis=0, zi=zi[k])
                x = gain * y
            cs = running + np.cumsum(x**2, axis=0)
            for idx in needed[(needed >= pos) & (needed <= pos + len(x))]:
                cum[int(idx)] = running.copy() if idx == pos else cs[idx - pos - 1]
            running = cs[-1]
            pos += len(x)
    z = np.stack([(cum[int(h)] - cum[int(low)]) / (T_g * sr) for low, h in zip(lo, hi)], axis=1)  # (C, blocks)
    G = np.array([1.0, 1.0, 1.0, 1.41, 1.41])[:C]
    with np.errstate(divide="ignore", invalid="ignore"):
        block = -0.691 + 10 * np.log10(G @ z)
        gated = block >= -70.0
        if not gated.any():
            return float("-inf")
        rel = -0.691 + 10 * np.log10(G @ z[:, gated].mean(axis=1)) - 10.0
        keep = (block > rel) & (block > -70.0)
        zbar = np.nan_to_num(z[:, keep].mean(axis=1)) if keep.any() else np.zeros(C)
        return float(-0.691 + 10 * np.log10(G @ zbar))
