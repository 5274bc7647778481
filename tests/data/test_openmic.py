"""OpenMIC-2018 in its published layout (data/sources/openmic.py), on mirdata's fixture and a built npz."""

import json

import numpy as np
import pytest

from weakmir.data.features import read_features
from weakmir.data.labels import OPENMIC
from weakmir.data.manifest import Manifest
from weakmir.data.sources import openmic
from weakmir.errors import WeakmirError

FIXTURE = "mirdata_snippets/tests/resources/mir_datasets/openmic2018"


def test_openmic_fixture(shared_data, tmp_path):
    root = shared_data / FIXTURE
    m = openmic.load(root, tmp_path / "om")
    again = Manifest.read(tmp_path / "om")
    assert [t.id for t in again.tracks] == ["000046_3840"]  # the one clip of the partitions with features
    t = again.tracks[0]
    # aggregated labels: clarinet 0.171, flute 0.0, trumpet 0.0 -> all absent; the 17 others unknown
    assert t.tags.present == frozenset() and t.tags.absent == {"clarinet", "flute", "trumpet"}
    assert t.split == ("valid" if openmic.valid_pick("000046_3840") else "train") and t.true_tags is None
    f = read_features(again.resolve(t.features))
    stored = json.loads((root / "vggish" / "000" / "000046_3840.json").read_text())
    assert f.shape == (10, 128) and f[0, :3].tolist() == stored["features"][0][:3]
    assert t.mixture.endswith("000046_3840.ogg") and t.sample_rate == 22050
    assert again.references_in_place == [str(root.resolve())]
    assert m.summary()["missing_tag_rate"] == pytest.approx(17 / 20)


def test_openmic_npz_layout_and_errors(tmp_path):
    root = tmp_path / "openmic"
    (root / "partitions").mkdir(parents=True)
    keys = [f"{i:06d}_0" for i in range(12)]
    (root / "partitions" / "split01_train.csv").write_text("\n".join(keys[:10]) + "\n")
    (root / "partitions" / "split01_test.csv").write_text("\n".join(keys[10:] + ["999999_0"]) + "\n")
    y_true = np.zeros((12, 20), np.float32)
    y_mask = np.zeros((12, 20), bool)
    y_true[0, OPENMIC.index("piano")], y_mask[0, OPENMIC.index("piano")] = 0.8, True
    y_mask[0, OPENMIC.index("voice")] = True  # relevance 0 -> absent
    x = np.arange(12 * 10 * 128, dtype=np.uint8).reshape(12, 10, 128)
    np.savez(root / "openmic-2018.npz", X=x, Y_true=y_true, Y_mask=y_mask, sample_key=np.array(keys))
    (root / "class-map.json").write_text(json.dumps({c: i for i, c in enumerate(OPENMIC)}))
    m = openmic.load(root, tmp_path / "out")
    assert len(m.tracks) == 12  # 999999_0 has no features: left out with a note
    t0 = m.track(keys[0])
    assert t0.tags.present == {"piano"} and t0.tags.absent == {"voice"}  # no CSV: labels from Y_true / Y_mask
    assert np.array_equal(read_features(m.resolve(t0.features)), x[0].astype(np.float32))
    assert {t.split for t in m.tracks[10:]} == {"test"}
    assert {t.split for t in m.tracks[:10]} <= {"train", "valid"}
    (root / "class-map.json").write_text(json.dumps({"piano": 0}))
    with pytest.raises(WeakmirError, match="class-map.json"):
        openmic.load(root, tmp_path / "out2")
