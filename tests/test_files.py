import os
import stat
from pathlib import Path

import numpy as np
import pytest

from weakmir.audio.io import save
from weakmir.files import atomic_write_text


def test_atomic_writes_get_ordinary_permissions_and_leave_no_temp(tmp_path):
    """mkstemp makes owner-only files; what weakmir writes must be readable like any file the user makes."""
    old = os.umask(0o022)
    try:
        a = atomic_write_text(tmp_path / "r.json", "{}\n")
        b = save(tmp_path / "x.wav", np.zeros((2, 100), np.float32), 8000)
    finally:
        os.umask(old)
    for p in (a, b):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "x.wav"]
    with pytest.raises(Exception):
        save(tmp_path / "bad.wav", np.full((1, 10), np.nan, np.float32), 8000)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_remove_pending_sweeps_a_write_left_in_progress(tmp_path):
    """An interrupt can land where no ``except`` of the writer runs (between the file's creation and the
    writer's block): the CLI's handler calls remove_pending, which removes the temporary file; the final
    name was never created."""
    from weakmir.files import atomic_path, remove_pending

    cm = atomic_path(tmp_path / "out.wav")
    tmp = cm.__enter__()  # the writer is stopped here, its block never entered
    assert Path(tmp).exists() and Path(tmp).name.startswith(".out.wav.") and tmp.endswith(".wav")
    remove_pending()
    assert list(tmp_path.iterdir()) == []
