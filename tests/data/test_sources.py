"""Dataset loaders against real files (../shared/data) and generated fixtures in the real layouts."""

import numpy as np
import pytest

from weakmir.audio.io import load, save
from weakmir.data.manifest import Manifest
from weakmir.data.sources import musdb
from weakmir.errors import WeakmirError


def _hq_fixture(root, names=("Actions - One Minute Smile", "Some Band - Song"), subset="train", stems=None):
    rng = np.random.default_rng(0)
    for name in names:
        parts = {}
        for lab in stems or ("drums", "bass", "other", "vocals"):
            parts[lab] = (0.1 * rng.standard_normal((2, 8000))).astype(np.float32)
            save(root / subset / name / f"{lab}.wav", parts[lab], 8000, subtype="FLOAT")
        save(root / subset / name / "mixture.wav", sum(parts.values()), 8000, subtype="FLOAT")


def test_musdb_hq_layout(tmp_path):
    _hq_fixture(tmp_path / "hq")
    _hq_fixture(tmp_path / "hq", names=("Test Band - Tune",), subset="test")
    m = musdb.load_hq(tmp_path / "hq", tmp_path / "out")
    assert Manifest.read(tmp_path / "out").to_dict() == m.to_dict()
    splits = {t.id: t.split for t in m.tracks}
    assert splits == {"Actions - One Minute Smile": "valid", "Some Band - Song": "train", "Test Band - Tune": "test"}
    t = m.tracks[0]
    assert [s.id for s in t.stems] == ["vocals", "bass", "drums", "other"]
    assert all(s.true_labels == [s.id] and s.observed == [s.id] for s in t.stems)
    mix, _ = load(m.resolve(t.mixture))
    assert np.allclose(mix, sum(load(m.resolve(s.path))[0] for s in t.stems), atol=1e-6)
    # a missing stem is a one-line error naming the folder
    (tmp_path / "hq" / "train" / "Some Band - Song" / "bass.wav").unlink()
    with pytest.raises(WeakmirError, match=r"Some Band - Song: missing bass\.wav"):
        musdb.load_hq(tmp_path / "hq", tmp_path / "out2")


def test_mdx23_labelnoise_layout(tmp_path):
    _hq_fixture(tmp_path / "mdx", names=("a1b2", "c3d4"), subset="", stems=("drums", "bass", "vocals"))
    m = musdb.load_hq(tmp_path / "mdx", tmp_path / "out", noisy=True)
    assert len(m.tracks) == 2 and all(t.split == "train" for t in m.tracks)
    assert all(s.true_labels is None for t in m.tracks for s in t.stems)  # unknown, not guessed
    with pytest.raises(Exception, match="true labels are unknown"):
        m.tracks[0].clean_stems()
    with pytest.raises(WeakmirError, match="no track folders"):
        musdb.load_hq(tmp_path / "out", tmp_path / "o2", noisy=True)


def test_musdb_stem_mp4(shared_data, tmp_path):
    pytest.importorskip("av")
    m = musdb.load_stems(shared_data / "musdb_sample", tmp_path / "mus", progress=False)
    t = m.tracks[0]
    assert t.id == "Music Delta - 80s Rock" and t.split == "test" and t.sample_rate == 44100
    assert {s.id for s in t.stems} == {"vocals", "bass", "drums", "other"}
    mix, _ = load(m.resolve(t.mixture))
    total = sum(load(m.resolve(s.path))[0] for s in t.stems)
    # AAC-coded stems do not sum exactly to the AAC-coded mixture, but closely
    assert np.corrcoef(mix.ravel(), total.ravel())[0, 1] > 0.99
    assert 6.5 < t.duration < 7.5
    again = musdb.load_stems(shared_data / "musdb_sample", tmp_path / "mus", progress=False)  # reuses the FLACs
    assert again.to_dict() == m.to_dict()
    with pytest.raises(WeakmirError, match="no .stem.mp4 files"):
        musdb.load_stems(tmp_path, tmp_path / "x", progress=False)
