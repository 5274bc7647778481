"""Shared fixtures: seeded RNG, tiny corpora rendered once per session."""

from __future__ import annotations

import numpy as np
import pytest

from weakmir.errors import SoundFontError


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _soundfont_or_skip():
    from weakmir.data.synth.render import _import_fluidsynth, find_soundfont

    try:
        _import_fluidsynth()
        return find_soundfont()
    except SoundFontError as e:
        pytest.skip(f"rendering needs FluidSynth and a GM SoundFont ({e}); 'make test' installs them")


def _build(tmp_path_factory, name, **kw):
    from weakmir.data.synth.build import SynthConfig, build_corpus

    _soundfont_or_skip()
    out = tmp_path_factory.mktemp(name)
    cfg = SynthConfig(**kw)
    manifest, stats = build_corpus(out, cfg, progress=False)
    return out, manifest, stats, cfg


@pytest.fixture(scope="session")
def chorale_corpus(tmp_path_factory):
    """3 chorale tracks of 8 s, label noise on, half the tags missing."""
    return _build(tmp_path_factory, "chorale", preset="chorale", tracks=3, seconds=8.0, seed=5,
                  bleed=0.2, wrong_label=0.2, merge=0.2, missing=0.5, jobs=1)


@pytest.fixture(scope="session")
def pop_corpus(tmp_path_factory):
    """6 pop tracks of 8 s, label noise on."""
    return _build(tmp_path_factory, "pop", preset="pop", tracks=6, seconds=8.0, seed=3,
                  bleed=0.15, wrong_label=0.15, merge=0.15, missing=0.3, jobs=2)


@pytest.fixture(scope="session")
def voice_corpus(tmp_path_factory):
    """10 clean pop tracks of 8 s at 16 kHz (their lead voice has stems and f0: majl's data)."""
    return _build(tmp_path_factory, "voice", preset="pop", tracks=10, seconds=8.0, seed=11, sample_rate=16000, jobs=2)


SHARED_DATA = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    """../shared/data (real datasets and reference fixtures), or skip."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (a user's fresh clone has no shared data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def museval_metrics():
    """museval's metrics module, imported without museval/__init__ (which needs musdb -> stempeg -> ffmpeg)."""
    from weakmir.metrics.reference import museval_metrics as load

    try:
        return load()
    except ImportError as e:
        pytest.skip(f"museval is not installed ({e}); 'make test' installs it")


@pytest.fixture(scope="session")
def torchcrepe():
    """torchcrepe (with weakmir's torchaudio shim), or skip when it or librosa is not installed."""
    pytest.importorskip("librosa")
    from weakmir.audio.crepe import import_torchcrepe
    from weakmir.errors import WeakmirError

    try:
        return import_torchcrepe()
    except WeakmirError as e:
        pytest.skip(f"{e} ('make test' installs it)")


@pytest.fixture(scope="session")
def slakh_corpus(tmp_path_factory):
    """10 slakh-preset tracks of 8 s at 16 kHz (piano, distorted guitar, bass; splits 8 / 1 / 1)."""
    return _build(tmp_path_factory, "slakh", preset="slakh", tracks=10, seconds=8.0, sample_rate=16000, seed=2, jobs=2)
