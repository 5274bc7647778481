"""Atomic file writes: write to a temporary name in the same folder, then rename.

A crash or a bad value never leaves a half-written file under the final name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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


_PENDING: set[str] = set()  # temporary names of writes in progress (swept by remove_pending on an interrupt)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """A temporary name beside ``path`` to write to (parent folders created).

    When the block ends normally the file is published onto ``path``
    (:func:`publish`); when it raises, the temporary file is removed and
    ``path`` is left as it was. The temporary name keeps ``path``'s suffix, so
    writers that pick a format from it (soundfile) still do. The name is
    registered (:func:`remove_pending`) before the file is created, so an
    interrupt that lands where this block's ``except`` cannot run (after the
    name is handed out, before the caller's block starts) is cleaned up too.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = None
    try:
        while True:
            name = str(path.parent / f".{path.name}.{os.urandom(4).hex()}{path.suffix}")
            _PENDING.add(name)
            try:
                os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                break
            except FileExistsError:  # another writer's name: not ours to remove
                _PENDING.discard(name)
                name = None
        yield name
        publish(name, path)
    except BaseException:
        if name is not None:  # also a file created just before the interrupt
            Path(name).unlink(missing_ok=True)
        raise
    finally:
        _PENDING.discard(name)


def remove_pending() -> None:
    """Remove the temporary files of every write still in progress (the CLI's interrupt handler)."""
    for name in list(_PENDING):
        Path(name).unlink(missing_ok=True)
        _PENDING.discard(name)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (creates parent folders)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


def json_safe(x):
    """``x`` with numpy scalars as Python numbers and non-finite floats as the strings ``"nan"``,
    ``"inf"``, ``"-inf"`` (JSON has no such numbers); tuples as lists."""
    import math

    import numpy as np

    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))
    if isinstance(x, np.integer):
        return int(x)
    return x


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    """``obj`` (:func:`json_safe`) as indented JSON at ``path``, atomically."""
    import json

    return atomic_write_text(path, json.dumps(json_safe(obj), indent=1) + "\n")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (creates parent folders)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return Path(path)


def _same(a: Path, b: Path) -> bool:
    """``a`` and ``b`` name one file (the same inode when both exist, else the same resolved path)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_output_folder(out: str | os.PathLike, inputs=(), writes=(), overwrite: bool = False,
                        option: str = "-o") -> Path:
    """Check an output folder before any work, so a run never fails half-way for want of a place to write.

    Refused, each with one line naming the folder and the fix: ``out`` (or a folder above it) is a
    file; the nearest existing folder cannot be written (read-only file system, permissions: a
    temporary file is made and removed there); ``out`` is one of ``inputs``; a file the verb writes
    (``writes``, names relative to ``out``) is one of ``inputs``, unless ``overwrite``. Nothing is
    created. Returns ``out`` as a :class:`~pathlib.Path`.
    """
    from .errors import WeakmirError

    out = Path(out)
    inputs = [Path(p) for p in inputs if p is not None]
    for p in inputs:
        if _same(out, p) and not p.is_dir():
            raise WeakmirError(f"{out}: is the input file {p}, not a folder; give {option} a folder for the outputs")
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        what = "is a file" if probe == out else f"lies under {probe}, which is a file"
        raise WeakmirError(f"{out}: {what}, not a folder; give {option} a folder (new or existing)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".weakmir-write-test.", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise WeakmirError(f"{out}: cannot write in {probe} ({e.strerror or e}); give {option} a writable folder") from e
    if not overwrite:
        for name in writes:
            dest = out / name
            for p in inputs:
                if _same(dest, p):
                    raise WeakmirError(f"{dest}: would overwrite the input {p}; give {option} another folder, "
                                       "or pass --overwrite to replace it")
    return out


def read_json(path: str | os.PathLike, what: str, fix: str, missing: str = "check the path", error=None):
    """The JSON in ``path``, or one line naming it: missing (``missing`` says what to do), a folder,
    unreadable, or malformed (``fix`` says what to do). ``what`` names the kind of file; ``error`` is
    the :class:`~weakmir.errors.WeakmirError` subclass raised."""
    import json

    from .errors import WeakmirError

    error = error or WeakmirError
    path = Path(path)
    if not path.exists():
        raise error(f"{path}: no such {what}; {missing}")
    if not path.is_file():
        raise error(f"{path}: is a folder, not a {what} file; point to the file instead")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: malformed JSON ({e}); {fix}") from e
    except OSError as e:
        raise error(f"{path}: cannot read it ({e.strerror or e}); check its permissions") from e
