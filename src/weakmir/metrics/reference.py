"""The reference implementations we check ourselves against, importable here.

``import museval`` fails on a machine without ffmpeg: its ``__init__`` imports
``musdb``, which imports ``stempeg``. Its ``metrics`` module (BSS Eval v4)
needs only numpy and scipy, so we load that file on its own.
"""

from __future__ import annotations

import importlib.util
import sys


def museval_metrics():
    """museval's ``metrics`` module (raises ImportError when museval is not installed)."""
    if "museval.metrics" in sys.modules:
        return sys.modules["museval.metrics"]
    spec = importlib.util.find_spec("museval")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("museval is not installed; run: pip install --no-deps museval")
    path = list(spec.submodule_search_locations)[0] + "/metrics.py"
    mspec = importlib.util.spec_from_file_location("weakmir_museval_metrics", path)
    module = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(module)
    return module
