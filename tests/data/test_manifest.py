import json

import numpy as np
import pytest

from weakmir.audio.io import save
from weakmir.data.labels import STEMS4, LabelSet
from weakmir.data.manifest import Manifest, Stem, Track
from weakmir.errors import ManifestError


def make(tmp_path, n_tracks=2):
    tracks = []
    for i in range(n_tracks):
        stems = []
        for lab in ("vocals", "drums"):
            p = f"t{i}/{lab}.wav"
            save(tmp_path / p, np.zeros((2, 800), np.float32), 8000, subtype="PCM_16")
            stems.append(Stem(id=lab, path=p, sample_rate=8000, channels=2, frames=800,
                              labels=LabelSet.complete([lab], STEMS4), true_labels=[lab], instruments=["voice"]))
        tracks.append(Track(id=f"t{i}", split="train", sample_rate=8000, duration=0.1, stems=stems,
                            tags=LabelSet({"voice"}, set()), true_tags=["voice", "drums"], provenance={"k": 1}))
    return Manifest(tracks=tracks, root=tmp_path, name="toy")


def test_roundtrip(tmp_path):
    m = make(tmp_path)
    path = m.write(tmp_path / "manifest.json")
    m2 = Manifest.read(path)
    assert m2.to_dict() == m.to_dict()
    assert m2.tracks[0].stems[1].labels.state("drums") == 1
    assert m2.tracks[0].tags.state("piano") is None  # missing stays missing
    assert Manifest.read(tmp_path).name == "toy"  # a folder works too
    assert json.loads(path.read_text())["version"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


@pytest.mark.parametrize("edit,match", [
    (lambda d: d.update(tracks=[]), "holds no tracks"),
    (lambda d: d["tracks"][0]["stems"][0]["labels"].update(present=["voclas"]), "unknown label 'voclas'"),
    (lambda d: d["tracks"][1].update(id="t0"), "duplicate track id"),
    (lambda d: d["tracks"][0]["stems"][0].update(path="t0/gone.wav"), "gone.wav is missing"),
    (lambda d: d["tracks"][0].update(split="training"), "unknown split 'training'"),
    (lambda d: d["tracks"][0].update(colour="red"), r"unknown field\(s\) \['colour'\]"),
    (lambda d: d.update(version=99), "version 99 is not supported"),
    (lambda d: d["tracks"][0]["tags"].update(present=["kazoo"]), "unknown label 'kazoo'"),
    (lambda d: d["tracks"][0]["stems"][0].pop("frames"), r"missing field\(s\) \['frames'\]"),
])
def test_bad_manifests_fail_with_one_line(tmp_path, edit, match):
    d = make(tmp_path).to_dict()
    edit(d)
    p = tmp_path / "manifest.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ManifestError, match=match) as e:
        Manifest.read(p)
    assert "\n" not in str(e.value) and "manifest.json" in str(e.value)


def test_malformed_and_missing_file(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="malformed JSON"):
        Manifest.read(tmp_path / "manifest.json")
    with pytest.raises(ManifestError, match="no such manifest"):
        Manifest.read(tmp_path / "other.json")
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(ManifestError, match="not a weakmir manifest"):
        Manifest.read(tmp_path / "x.json")


def test_views_and_summary(tmp_path):
    m = make(tmp_path)
    s = m.tracks[0].stems[0]
    s.corruption = {"kind": "bleed", "source": "drums", "gain_db": -10.0}
    s.true_labels = ["vocals", "drums"]
    s.clean_path, s.path = s.path, "t0/drums.wav"
    s.provenance["source_label"] = "vocals"
    m.tracks[0].stems[1].hidden = True
    assert [x.id for x in m.tracks[0].observed_stems()] == ["vocals"]
    clean = m.tracks[0].clean_stems()
    assert [(st.id, p, lab) for st, p, lab in clean] == [("vocals", "t0/vocals.wav", ["vocals"]),
                                                         ("drums", "t0/drums.wav", ["drums"])]
    summ = m.summary()
    assert summ["tracks"] == 2 and summ["label_noise"] == {"bleed": 1, "wrong_label": 0, "merge": 0}
    assert summ["missing_tag_rate"] == pytest.approx(19 / 20)
