"""OpenMIC-2018 (Humphrey, Durand, McFee, ISMIR 2018): 20 000 10-s clips, 20 instrument classes, partial labels.

Citation: E. J. Humphrey, S. Durand, B. McFee, "OpenMIC-2018: an open data-set for multiple instrument
recognition", ISMIR 2018. Licence: CC BY 4.0 (audio from the Free Music Archive, per-clip licences in
the metadata).

Expected tree (the dataset's own, as Zenodo ships it)::

    ROOT/
      openmic-2018.npz                      X (clips, 10, 128) uint8 VGGish, Y_true, Y_mask (clips, 20), sample_key
      vggish/NNN/<key>.json                 or per clip: {"time_points": [...], "features": [[128] x 10]}
      openmic-2018-aggregated-labels.csv    sample_key, instrument, relevance, num_responses
      class-map.json                        {"accordion": 0, ..., "voice": 19}
      partitions/split01_train.csv          one sample_key per line
      partitions/split01_test.csv
      audio/NNN/<key>.ogg                   optional: the clips' audio (10 s)

One of ``openmic-2018.npz`` and ``vggish/`` must be there (features of the npz are written once as
``OUT/features/<key>.npy``; the per-clip JSONs are read where they lie). Labels come from the aggregated
CSV: relevance >= 0.5 is present, < 0.5 absent, a (clip, class) pair without a row unknown — without the
CSV, from the npz's ``Y_true`` / ``Y_mask``, the same numbers. Splits: ``split01_test`` is ``test``;
15 % of ``split01_train`` is ``valid`` (the thesis §3.2.2: "15 % data from the training split is
randomly selected"; here the clips whose key hashes below 0.15, so the choice is fixed and needs no
seed) and the rest ``train``. Clips listed in a partition without features are left out and
counted (a partial download); clips with features in no partition too. Audio, when present, is the
track's mixture (referenced in place; the manifest lists ``ROOT`` under ``references_in_place``).
Tracks have no stems and no true labels.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np

from ...audio.io import check as audio_check
from ...errors import WeakmirError, notice
from ...files import atomic_path, check_output_folder, read_json
from ..labels import OPENMIC, LabelSet
from ..manifest import Manifest, Track

LABELS = "openmic-2018-aggregated-labels.csv"
VALID_FRACTION = 0.15


def valid_pick(key: str) -> bool:
    """True for the ~15 % of training keys that form the valid split (sha1 of the key below 0.15)."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 16 ** 8 < VALID_FRACTION


def _keys(path: Path) -> list[str]:
    if not path.is_file():
        raise WeakmirError(f"{path}: missing; OpenMIC-2018 ships partitions/split01_train.csv and split01_test.csv "
                           "(check ROOT)")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_labels(root: Path, npz=None) -> dict[str, LabelSet]:
    """``{key: LabelSet}`` from the aggregated CSV (relevance >= 0.5 present, < 0.5 absent), or the npz."""
    path = root / LABELS
    if path.is_file():
        present, absent = {}, {}
        with open(path, newline="") as f:
            rows = csv.DictReader(f)
            if not {"sample_key", "instrument", "relevance"} <= set(rows.fieldnames or ()):
                raise WeakmirError(f"{path}: needs columns sample_key, instrument, relevance; is it the aggregated "
                                   "labels file?")
            for i, r in enumerate(rows, 2):
                if r["instrument"] not in OPENMIC:
                    raise WeakmirError(f"{path} line {i}: unknown instrument {r['instrument']!r}; OpenMIC has "
                                       f"{', '.join(OPENMIC)}")
                try:
                    rel = float(r["relevance"])
                except ValueError:
                    raise WeakmirError(f"{path} line {i}: relevance {r['relevance']!r} is not a number") from None
                (present if rel >= 0.5 else absent).setdefault(r["sample_key"], set()).add(r["instrument"])
        keys = set(present) | set(absent)
        return {k: LabelSet(frozenset(present.get(k, ())), frozenset(absent.get(k, ()))) for k in keys}
    if npz is None:
        raise WeakmirError(f"{path}: missing, and there is no openmic-2018.npz to read labels from; check ROOT")
    out = {}
    for key, yt, ym in zip(npz["sample_key"], npz["Y_true"], npz["Y_mask"]):
        k = key.decode() if isinstance(key, bytes) else str(key)
        out[k] = LabelSet(frozenset(c for c, t, m in zip(OPENMIC, yt, ym) if m and t >= 0.5),
                          frozenset(c for c, t, m in zip(OPENMIC, yt, ym) if m and t < 0.5))
    return out


def load(root, out, progress: bool = False) -> Manifest:
    """Read OpenMIC-2018 at ``root`` (module docstring) and write ``out/manifest.json``."""
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise WeakmirError(f"{root}: no such folder; give the OpenMIC-2018 root (with openmic-2018.npz or vggish/)")
    cmap = root / "class-map.json"
    if cmap.is_file():
        classes = read_json(cmap, "class map", "restore class-map.json from the dataset")
        if not isinstance(classes, dict) or sorted(classes, key=classes.get) != list(OPENMIC):
            raise WeakmirError(f"{cmap}: its classes are not OpenMIC-2018's 20 in their order; restore the file")
    npz_path = root / "openmic-2018.npz"
    npz = None
    if npz_path.is_file():
        try:
            npz = np.load(npz_path, allow_pickle=False)
            _ = npz["X"].shape, npz["sample_key"].shape
        except Exception as e:  # noqa: BLE001
            raise WeakmirError(f"{npz_path}: cannot read ({type(e).__name__}: {e}); re-download it") from None
    if npz is None and not (root / "vggish").is_dir():
        raise WeakmirError(f"{root}: neither openmic-2018.npz nor vggish/; weak-mic needs the VGGish features")
    train_keys, test_keys = _keys(root / "partitions" / "split01_train.csv"), _keys(root / "partitions" / "split01_test.csv")
    labels = read_labels(root, npz)
    check_output_folder(out, inputs=[root], option="--out")
    feats: dict[str, str] = {}
    if npz is not None:
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in npz["sample_key"]]
        wanted = set(train_keys) | set(test_keys)
        for k, x in zip(keys, npz["X"]):
            if k in wanted:
                feats[k] = x
    else:
        for p in (root / "vggish").glob("*/*.json"):
            feats[p.stem] = str(p)
    tracks, skipped = [], 0
    for split_keys, split in ((train_keys, "train"), (test_keys, "test")):
        for k in split_keys:
            if k not in feats:
                skipped += 1
                continue
            if isinstance(feats[k], str):
                fpath = Path(feats[k])
            else:
                fpath = out / "features" / f"{k}.npy"
                fpath.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(fpath) as tmp:
                    with open(tmp, "wb") as f:
                        np.save(f, np.asarray(feats[k], np.float32))
            audio = root / "audio" / k[:3] / f"{k}.ogg"
            mixture, sr = None, 16000
            if audio.is_file():
                sr = audio_check(audio).sample_rate
                mixture = str(audio.resolve())
            s = "valid" if split == "train" and valid_pick(k) else split
            tracks.append(Track(id=k, split=s, sample_rate=sr, duration=10.0, stems=[], mixture=mixture,
                                tags=labels.get(k, LabelSet()), true_tags=None, features=str(fpath.resolve()),
                                provenance={"dataset": "OpenMIC-2018", "partition": f"split01_{split}"}))
    if not tracks:
        raise WeakmirError(f"{root}: no clip of the partitions has features; check vggish/ or openmic-2018.npz")
    if skipped:
        notice(f"{root}: {skipped} clips of the partitions have no features and are left out (a partial download?)")
    m = Manifest(tracks=tracks, root=out.resolve(), name="OpenMIC-2018 split01",
                 references_in_place=[str(root.resolve())])
    m.validate(str(out / "manifest.json"))
    m.write(out / "manifest.json")
    m.path = out / "manifest.json"
    return m

