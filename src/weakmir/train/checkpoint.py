"""Self-describing checkpoints.

A checkpoint is one ``torch.save`` file holding ``{"format", "version",
"model": registry name, "kwargs": constructor arguments, "state": state_dict,
"config": the resolved run config, "weakmir": package version, "git": commit
or None}``. :func:`load` rebuilds the model with nothing but the file; a
registry name instead of a file gives that model untrained (for tests and
smoke runs). Writes are atomic.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import torch

from .. import __version__
from ..errors import WeakmirError
from ..files import atomic_path
from ..models import build, registered

FORMAT = "weakmir.checkpoint"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except Exception:
        return None


def save(path: str | os.PathLike, model: torch.nn.Module, kwargs: dict, config: dict | None = None) -> Path:
    """Write ``model`` (a registered class built with ``kwargs``) atomically."""
    path = Path(path)
    name = getattr(model, "registry_name", None)
    if name is None:
        raise WeakmirError(f"{type(model).__name__} is not a registered model; register it in weakmir.models")
    blob = {"format": FORMAT, "version": 1, "model": name, "kwargs": dict(kwargs),
            "state": model.state_dict(), "config": dict(config or {}), "weakmir": __version__, "git": _git_commit()}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)
    return path


def load(path_or_name: str | os.PathLike, map_location: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild a model in eval mode; returns ``(model, checkpoint dict without state)``."""
    p = Path(path_or_name)
    if not p.exists():
        names = registered()
        if str(path_or_name) in names:
            model = build(str(path_or_name))
            model.eval()
            return model, {"model": str(path_or_name), "kwargs": {}, "config": {}, "untrained": True}
        raise WeakmirError(f"{p}: no such checkpoint (or model name: {', '.join(names)}); check the path")
    try:
        blob = torch.load(str(p), map_location=map_location, weights_only=False)
    except Exception as e:
        raise WeakmirError(f"{p}: cannot read checkpoint ({e}); it may be truncated, re-save it") from e
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise WeakmirError(f"{p}: not a weakmir checkpoint; save one with weakmir.train.checkpoint.save")
    model = build(blob["model"], **blob["kwargs"])
    model.load_state_dict(blob["state"])
    model.eval()
    meta = {k: v for k, v in blob.items() if k != "state"}
    return model, meta
