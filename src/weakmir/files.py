"""Atomic file writes: write to a temporary name in the same folder, then rename.

A crash or a bad value never leaves a half-written file under the final name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Give a finished temporary file the permissions a plain ``open()`` would (``mkstemp`` makes
    it owner-only) and rename it to ``path`` in one step."""
    os.chmod(tmp, _default_mode())
    os.replace(tmp, path)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (creates parent folders)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
