import os
import stat

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
