"""The mixing-effects chain of self-refine_koo2023 §3.1.1.

Order (the paper's): 1. dynamic range compression, 2. algorithmic reverb,
3. stereo imaging, 4. loudness. Each effect is applied with probability
``p_*`` and random parameters drawn uniformly from the ranges in
:class:`EffectsConfig`, from a passed ``numpy.random.Generator`` (no global
randomness). The paper takes the chain from Koo et al., ICASSP 2023, without
giving ranges; ours are musically plausible ranges of the same effects and
are the defaults a user can override.

Backends: ``"pedalboard"`` (Spotify's JUCE effects: Compressor, Reverb) is the
default. ``"numpy"`` is a plain numpy/scipy version of the same chain (feed-
forward RMS compressor, Schroeder/Freeverb-style comb+allpass reverb) kept
for the throughput benchmark and as a fallback; it is not sample-identical
to pedalboard. Stereo imaging (mid/side width + constant-power pan) and
loudness (pyloudnorm) are shared by both.

Shape: audio ``(channels, time)`` float32; stereo imaging needs 2 channels
(mono input passes through it unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal

from .loudness import integrated_loudness


@dataclass(frozen=True)
class EffectsConfig:
    """Probabilities and parameter ranges ``(low, high)`` of the chain."""

    p_compressor: float = 0.75
    threshold_db: tuple[float, float] = (-30.0, -6.0)
    ratio: tuple[float, float] = (1.5, 6.0)
    attack_ms: tuple[float, float] = (1.0, 30.0)
    release_ms: tuple[float, float] = (30.0, 300.0)
    p_reverb: float = 0.6
    room_size: tuple[float, float] = (0.1, 0.8)
    damping: tuple[float, float] = (0.2, 0.8)
    wet_level: tuple[float, float] = (0.05, 0.35)
    p_imaging: float = 0.8
    width: tuple[float, float] = (0.0, 1.5)
    pan: tuple[float, float] = (-0.6, 0.6)
    p_loudness: float = 1.0
    lufs: tuple[float, float] = (-26.0, -14.0)
    backend: str = "pedalboard"

    def __post_init__(self):
        if self.backend not in ("pedalboard", "numpy"):
            raise ValueError(f"unknown effects backend {self.backend!r}; use 'pedalboard' or 'numpy'")


def _u(rng: np.random.Generator, lo_hi) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def sample_params(rng: np.random.Generator, config: EffectsConfig = EffectsConfig()) -> dict:
    """Draw one set of chain parameters; an effect that is skipped maps to None."""
    c = config
    p = {}
    p["compressor"] = (
        dict(threshold_db=_u(rng, c.threshold_db), ratio=_u(rng, c.ratio),
             attack_ms=_u(rng, c.attack_ms), release_ms=_u(rng, c.release_ms))
        if rng.random() < c.p_compressor else None
    )
    p["reverb"] = (
        dict(room_size=_u(rng, c.room_size), damping=_u(rng, c.damping), wet_level=_u(rng, c.wet_level))
        if rng.random() < c.p_reverb else None
    )
    p["imaging"] = dict(width=_u(rng, c.width), pan=_u(rng, c.pan)) if rng.random() < c.p_imaging else None
    p["loudness"] = dict(lufs=_u(rng, c.lufs)) if rng.random() < c.p_loudness else None
    return p


# -- individual effects ------------------------------------------------------

def compress(x, sample_rate, threshold_db, ratio, attack_ms, release_ms, backend="pedalboard"):
    """Dynamic range compression, ``(C, T) -> (C, T)``."""
    if backend == "pedalboard":
        import pedalboard

        fx = pedalboard.Compressor(threshold_db=threshold_db, ratio=ratio, attack_ms=attack_ms, release_ms=release_ms)
        return fx(np.ascontiguousarray(x, dtype=np.float32), sample_rate)
    # numpy: feed-forward compressor on a one-pole-smoothed linked power detector
    power = (np.asarray(x, dtype=np.float64) ** 2).mean(axis=0)
    a = np.exp(-1.0 / (sample_rate * attack_ms / 1000.0))
    r = np.exp(-1.0 / (sample_rate * release_ms / 1000.0))
    # attack/release smoothing approximated by one pole with the mean time constant
    # on the power envelope (cheap, vectorised with lfilter)
    pole = 0.5 * (a + r)
    env = scipy.signal.lfilter([1 - pole], [1, -pole], power)
    level_db = 10 * np.log10(np.maximum(env, 1e-12))
    over = np.maximum(level_db - threshold_db, 0.0)
    gain = 10 ** (-(over * (1 - 1 / ratio)) / 20)
    return (x * gain).astype(np.float32)


def _delay_recursion(x: np.ndarray, d: int, b0: float, bd: float, a: float) -> np.ndarray:
    """``y[n] = b0 x[n] + bd x[n-d] + a y[n-d]`` along the last axis.

    Every sample depends only on samples ``d`` back, so blocks of ``d``
    samples are computed at once: a loop of ``T / d`` vectorised steps
    instead of a ``d``-th order IIR filter (what ``lfilter`` would run).
    """
    T = x.shape[-1]
    y = b0 * x
    for s in range(d, T, d):
        e = min(s + d, T)
        y[..., s:e] += bd * x[..., s - d:e - d] + a * y[..., s - d:e - d]
    return y


_COMB_MS = (25.31, 26.94, 28.96, 30.75, 32.24, 33.81, 35.31, 36.67)
_ALLPASS_MS = (12.61, 10.0, 7.73, 5.1)


def reverb(x, sample_rate, room_size, damping, wet_level, backend="pedalboard"):
    """Algorithmic reverb, ``(C, T) -> (C, T)``; dry level is ``1 - wet_level``."""
    if backend == "pedalboard":
        import pedalboard

        fx = pedalboard.Reverb(room_size=room_size, damping=damping, wet_level=wet_level, dry_level=1.0 - wet_level)
        return fx(np.ascontiguousarray(x, dtype=np.float32), sample_rate)
    # numpy Freeverb-like: parallel feedback combs, then series Schroeder allpasses
    x = np.asarray(x, dtype=np.float64)
    feedback = (0.7 + 0.28 * room_size) * (1 - 0.5 * damping)
    wet = np.zeros_like(x)
    for k, ms in enumerate(_COMB_MS):
        d = int(sample_rate * ms / 1000.0) + 23 * (k % 2)
        wet += _delay_recursion(x, d, b0=0.0, bd=1.0, a=feedback)
    for ms in _ALLPASS_MS:
        wet = _delay_recursion(wet, int(sample_rate * ms / 1000.0), b0=-0.5, bd=1.0, a=0.5)
    wet *= 0.015
    return ((1 - wet_level) * x + wet_level * wet).astype(np.float32)


def stereo_image(x, width: float, pan: float = 0.0):
    """Mid/side width then constant-power pan, ``(2, T) -> (2, T)``.

    ``width=1, pan=0`` is the identity; ``width=0`` collapses to mono; ``pan``
    in [-1, 1] (left to right). Mono input is returned unchanged.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.shape[0] != 2:
        return x
    mid = 0.5 * (x[0] + x[1])
    side = 0.5 * (x[0] - x[1]) * width
    left, right = mid + side, mid - side
    theta = (pan + 1.0) * np.pi / 4.0  # 0..pi/2, centre pi/4
    gl, gr = np.cos(theta) * np.sqrt(2.0), np.sin(theta) * np.sqrt(2.0)
    return np.stack([left * gl, right * gr]).astype(np.float32)


def set_loudness(x, sample_rate, lufs: float):
    """Scale to ``lufs`` (pyloudnorm); silent or sub-400 ms signals use RMS dB FS instead."""
    x = np.asarray(x, dtype=np.float32)
    try:
        cur = integrated_loudness(x, sample_rate)
    except Exception:
        cur = float("-inf")
    if not np.isfinite(cur):
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        if rms <= 1e-9:
            return x
        cur = 20 * np.log10(rms)
    return (x * 10 ** ((lufs - cur) / 20)).astype(np.float32)


def tilt(x, sample_rate: int, db_per_octave: float, corner_hz: float = 500.0) -> np.ndarray:
    """Spectral tilt: gain ``db_per_octave × log2(f / corner_hz)`` dB above ``corner_hz``, 0 dB below, then
    the RMS restored — a brighter or darker instrument at the same level (zero-phase, applied by FFT).

    Shape: ``(..., T) -> (..., T)`` float32.
    """
    x = np.asarray(x, dtype=np.float32)
    if db_per_octave == 0:
        return x.copy()
    n = x.shape[-1]
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    gain = 10 ** (db_per_octave * np.log2(np.maximum(f, corner_hz) / corner_hz) / 20)
    y = np.fft.irfft(np.fft.rfft(x, axis=-1) * gain, n=n, axis=-1)
    rms_x, rms_y = np.sqrt(np.mean(np.square(x, dtype=np.float64))), np.sqrt(np.mean(np.square(y)))
    return (y * (rms_x / rms_y if rms_y > 0 else 0.0)).astype(np.float32)


def apply_chain(x: np.ndarray, sample_rate: int, params: dict, backend: str = "pedalboard") -> np.ndarray:
    """Apply the chain with fixed ``params`` (from :func:`sample_params`).

    Shape: ``(C, T) -> (C, T)``, length preserved (reverb tails are cut).
    """
    y = np.ascontiguousarray(x, dtype=np.float32)
    if params.get("compressor"):
        y = compress(y, sample_rate, backend=backend, **params["compressor"])
    if params.get("reverb"):
        y = reverb(y, sample_rate, backend=backend, **params["reverb"])
    if params.get("imaging"):
        y = stereo_image(y, **params["imaging"])
    if params.get("loudness"):
        y = set_loudness(y, sample_rate, **params["loudness"])
    return np.ascontiguousarray(y[..., : x.shape[-1]], dtype=np.float32)


def random_chain(x: np.ndarray, sample_rate: int, rng: np.random.Generator, config: EffectsConfig = EffectsConfig()):
    """Draw parameters from ``rng`` and apply the chain; returns ``(y, params)``."""
    params = sample_params(rng, config)
    return apply_chain(x, sample_rate, params, backend=config.backend), params


__all__ = ["EffectsConfig", "sample_params", "apply_chain", "random_chain", "compress", "reverb",
           "stereo_image", "set_loudness", "tilt"]
