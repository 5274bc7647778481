"""Instance features of a clip on disk: ``.npy`` arrays ``(instances, dim)`` or OpenMIC's ``vggish/*.json``.

Shapes: a clip's features are ``(instances, dim)`` float32 (OpenMIC: 10 x 128, one row per 0.96 s).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import WeakmirError

SUFFIXES = (".npy", ".json")


def read_features(path) -> np.ndarray:
    """Instance features ``(instances, dim)`` from a ``.npy`` file or an OpenMIC ``vggish/*.json``
    (``{"features": [[...], ...]}``); a one-line error naming the file when it is neither."""
    path = Path(path)
    try:
        if path.suffix == ".json":
            f = np.asarray(json.loads(path.read_text())["features"], np.float32)
        else:
            f = np.load(path, allow_pickle=False).astype(np.float32)
    except FileNotFoundError:
        raise WeakmirError(f"{path}: no such feature file; check the path") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WeakmirError(f"{path}: not a feature file ({type(e).__name__}: {e}); give a .npy array "
                           "(instances, dim) or an OpenMIC vggish .json") from None
    if f.ndim != 2 or not len(f) or not np.isfinite(f).all():
        raise WeakmirError(f"{path}: features must be a finite (instances, dim) array, got shape {f.shape}; "
                           "re-extract them")
    return f


def fit_instances(f: np.ndarray, instances: int) -> np.ndarray:
    """``(n, dim)`` -> ``(instances, dim)``: the first ``instances`` rows, or the rows tiled when fewer."""
    if len(f) >= instances:
        return f[:instances]
    return np.concatenate([f] * int(np.ceil(instances / len(f))))[:instances]


__all__ = ["SUFFIXES", "read_features", "fit_instances"]
