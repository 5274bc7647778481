"""MedleyDB (Bittner et al., ISMIR 2014) and its pitch subset MedleyDB-Pitch, for singing voice + f0.

Expected trees::

    MedleyDB (v1 / v2 multitrack release)
    ROOT/Audio/<Track>/<Track>_MIX.wav
    ROOT/Audio/<Track>/<Track>_METADATA.yaml            stems: {S01: {instrument, filename, component}, ...}
    ROOT/Audio/<Track>/<Track>_STEMS/<Track>_STEM_NN.wav
    ROOT/Annotations/Pitch_Annotations/<Track>_STEM_NN.csv   time s, f0 Hz (0 = unvoiced), no header
        (the annotation folder may also sit inside ROOT/Audio/.. as MedleyDB_Annotations/)

    MedleyDB-Pitch (monophonic stems with pYIN-corrected f0; mirdata's medleydb_pitch layout)
    ROOT/medleydb_pitch_metadata.json                   {stem: {audio_path, pitch_path, instrument, artist, title}}
    ROOT/audio/<Track>_STEM_NN.wav
    ROOT/pitch/<Track>_STEM_NN.csv

What is kept: the singing-voice stems (instrument ``male singer``, ``female singer``, ``vocalists``,
``male rapper``, ``female rapper``, ``choir``) that have a pitch annotation — the 3.21-h subset the paper
uses. A MedleyDB track gives its mixture and its first annotated voice stem (``vocals``, with f0):
``full``; a track with several voice stems keeps the first (the rest stays in the mixture, as
accompaniment: said in provenance). A MedleyDB-Pitch stem has no mixture: its track is the voice alone
(mixture = the stem), which trains the pitch side and gives the separator an easy case. Missing: the
other instruments' pitch (MAJL uses voice only) and the melody annotations.

Splits by song (``<Artist>_<Title>``): 20 % test, 10 % valid, the rest train, by the sha1 of the name (the
paper: a random 80/20).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...audio.io import check
from ...errors import WeakmirError
from ..labels import STEMS4, LabelSet
from ..manifest import Manifest, Stem, Track
from ..notes import write_f0
from .mir1k import split_of

VOICES = ("male singer", "female singer", "vocalists", "male rapper", "female rapper", "choir")


def read_pitch_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """MedleyDB pitch CSV (``time,f0`` rows, no header): ``times (n,)`` s, ``f0 (n,)`` Hz."""
    path = Path(path)
    try:
        a = np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError as e:
        raise WeakmirError(f"{path}: not a MedleyDB pitch CSV ({e}); rows are 'time,f0'") from e
    if a.shape[1] < 2 or not np.isfinite(a).all():
        raise WeakmirError(f"{path}: needs finite 'time,f0' rows; restore it from MedleyDB")
    order = np.argsort(a[:, 0], kind="stable")
    t, f = a[order, 0], np.clip(a[order, 1], 0, None)
    keep = np.concatenate([[True], np.diff(t) > 0])
    return t[keep], f[keep]


def _f0_file(src: Path, dest: Path, pending: list) -> Path:
    """Read (and check) the annotation now; ``pending`` gets the write, done once every track is read."""
    t, f = read_pitch_csv(src)
    pending.append((dest, t, f))
    return dest


def _voice_stem(path: Path, f0: Path, out: Path, provenance: dict) -> Stem:
    a = check(path, max_channels=2)
    return Stem(id="vocals", path=str(path.resolve()), sample_rate=a.sample_rate, channels=a.channels,
                frames=a.frames, labels=LabelSet.complete(["vocals"], STEMS4), true_labels=["vocals"],
                instruments=[provenance.get("instrument", "voice").replace(" ", "_")],
                f0=str(f0.relative_to(out)), provenance={"source_label": "vocals", **provenance})


def _metadata_yaml(path: Path) -> dict:
    import yaml

    try:
        d = yaml.safe_load(path.read_text())
    except Exception as e:  # noqa: BLE001
        raise WeakmirError(f"{path}: cannot read MedleyDB metadata ({e}); restore it") from e
    if not isinstance(d, dict) or not isinstance(d.get("stems"), dict):
        raise WeakmirError(f"{path}: no 'stems' mapping; this is not a MedleyDB _METADATA.yaml")
    return d


def _annotation_dirs(root: Path) -> list[Path]:
    return [p for p in (root / "Annotations" / "Pitch_Annotations", root / "MedleyDB_Annotations" / "Pitch_Annotations",
                        root / "Pitch_Annotations") if p.is_dir()]


def load(root: str | Path, out: str | Path) -> Manifest:
    """Read MedleyDB or MedleyDB-Pitch at ``root`` (module docstring) and write ``out/manifest.json``."""
    root, out = Path(root), Path(out)
    pending: list = []
    if (root / "medleydb_pitch_metadata.json").is_file():
        tracks, name = _pitch_subset(root, out, pending), "MedleyDB-Pitch"
    elif (root / "Audio").is_dir():
        tracks, name = _multitrack(root, out, pending), "MedleyDB"
    else:
        raise WeakmirError(f"{root}: neither Audio/<Track>/ (MedleyDB) nor medleydb_pitch_metadata.json "
                           "(MedleyDB-Pitch); point to the dataset's root folder")
    if not tracks:
        raise WeakmirError(f"{root}: no singing-voice stem with a pitch annotation found; MAJL needs voice stems "
                           f"({', '.join(VOICES)}) and their Pitch_Annotations")
    for dest, t, f in pending:
        write_f0(dest, t, f, (f > 0).astype(int))
    m = Manifest(tracks=tracks, root=out.resolve(), name=name, references_in_place=[str(root.resolve())])
    m.write(out / "manifest.json")
    return m


def _multitrack(root: Path, out: Path, pending: list) -> list[Track]:
    ann = _annotation_dirs(root)
    tracks = []
    for d in sorted(p for p in (root / "Audio").iterdir() if p.is_dir()):
        meta_p, mix = d / f"{d.name}_METADATA.yaml", d / f"{d.name}_MIX.wav"
        if not meta_p.exists():
            raise WeakmirError(f"{d}: no {meta_p.name}; every MedleyDB track folder has one (restore it)")
        meta = _metadata_yaml(meta_p)
        voices = []
        for sid, s in sorted(meta["stems"].items()):
            if not isinstance(s, dict) or s.get("instrument") not in VOICES:
                continue
            fname = s.get("filename") or f"{d.name}_STEM_{sid[1:]}.wav"
            f0 = next((a / f"{Path(fname).stem}.csv" for a in ann if (a / f"{Path(fname).stem}.csv").exists()), None)
            if f0 is not None:
                voices.append((sid, s, d / f"{d.name}_STEMS" / fname, f0))
        if not voices:
            continue
        if not mix.exists():
            raise WeakmirError(f"{mix}: missing; restore the track's mixture")
        sid, s, stem_path, f0_src = voices[0]
        f0 = _f0_file(f0_src, out / "f0" / f"{stem_path.stem}.csv", pending)
        stem = _voice_stem(stem_path, f0, out, {"instrument": s["instrument"], "stem": sid,
                                                "other_voice_stems_in_mixture": [v[0] for v in voices[1:]]})
        info = check(mix, max_channels=2)
        tracks.append(Track(id=d.name, split=split_of(d.name), sample_rate=info.sample_rate,
                            duration=info.frames / info.sample_rate, stems=[stem], mixture=str(mix.resolve()),
                            provenance={"dataset": "medleydb", "artist": meta.get("artist"), "title": meta.get("title")}))
    return tracks


def _pitch_subset(root: Path, out: Path, pending: list) -> list[Track]:
    meta_p = root / "medleydb_pitch_metadata.json"
    try:
        meta = json.loads(meta_p.read_text())
    except json.JSONDecodeError as e:
        raise WeakmirError(f"{meta_p}: malformed JSON ({e}); restore it") from e
    tracks = []
    for key, m in sorted(meta.items()):
        if m.get("instrument") not in VOICES:
            continue
        audio, pitch = root / "audio" / f"{key}.wav", root / "pitch" / f"{key}.csv"
        if not audio.exists() or not pitch.exists():
            raise WeakmirError(f"{root}: {key} is listed in {meta_p.name} but {audio if not audio.exists() else pitch} "
                               "is missing; restore it or remove the entry")
        f0 = _f0_file(pitch, out / "f0" / f"{key}.csv", pending)
        stem = _voice_stem(audio, f0, out, {"instrument": m["instrument"]})
        song = f"{m.get('artist', '')}_{m.get('title', key)}"
        tracks.append(Track(id=key, split=split_of(song), sample_rate=stem.sample_rate,
                            duration=stem.frames / stem.sample_rate, stems=[stem], mixture=None,
                            provenance={"dataset": "medleydb-pitch", "song": song, "artist": m.get("artist"),
                                        "title": m.get("title")}))
    return tracks


__all__ = ["VOICES", "read_pitch_csv", "load"]
