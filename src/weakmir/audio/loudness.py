"""Loudness (ITU-R BS.1770 integrated LUFS) with pyloudnorm.

Audio is ``(channels, time)``. pyloudnorm needs at least one 400 ms gating
block; shorter or silent signals have no defined loudness and raise.
"""

from __future__ import annotations

import numpy as np
import pyloudnorm

from ..errors import AudioError

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
