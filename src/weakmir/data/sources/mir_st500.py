"""MIR-ST500 (Wang & Jang, ICASSP 2021): 500 pop songs with singing-note annotations; pitch-only for MAJL.

Expected tree (the annotation JSON the authors publish, and the audio folders their download scripts
write; the audio itself comes from YouTube and is not redistributed)::

    ROOT/MIR-ST500_corrected.json        {"1": [[onset s, offset s, MIDI pitch], ...], ..., "500": [...]}
                                         (any ROOT/*.json with that shape is read when this name is absent)
    ROOT/train/<id>/Mixture.{mp3,wav,flac}      songs 1-400
    ROOT/test/<id>/Mixture.{mp3,wav,flac}       songs 401-500
        (a song folder directly under ROOT is placed by its id: <= 400 train, else test)

Pitch from notes: the voice's f0 on a 10 ms grid is the sounding note's equal-tempered pitch (a later
onset wins where notes touch, :func:`weakmir.data.notes.f0_from_notes`); the notes are also written.
Every track is ``pitch`` (mixture + f0, no voice stem). Missing: the voice stems (never published; the
authors' ``Vocal.wav`` is a Spleeter estimate, not a ground truth, and is not read), vibrato and
glides (a note is one flat pitch). 10 % of the training songs (sha1 of the id) go to valid.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...audio.io import check
from ...errors import WeakmirError
from ..manifest import Manifest, Track
from ..notes import f0_from_notes, write_f0, write_notes
from .mir1k import hash_unit

AUDIO = ("Mixture.mp3", "Mixture.wav", "Mixture.flac")
TRAIN_IDS = 400


def read_annotations(root: Path) -> tuple[dict, Path]:
    """``{song id: notes (n, 3) onset, offset, MIDI}`` and the JSON it came from."""
    path = root / "MIR-ST500_corrected.json"
    if not path.exists():
        found = sorted(root.glob("*.json"))
        if not found:
            raise WeakmirError(f"{root}: no MIR-ST500_corrected.json; put the published annotation JSON in ROOT")
        path = found[0]
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise WeakmirError(f"{path}: malformed JSON ({e}); restore the MIR-ST500 annotations") from e
    if not isinstance(d, dict):
        raise WeakmirError(f"{path}: expected {{song id: [[onset, offset, pitch], ...]}}")
    out = {}
    for k, notes in d.items():
        a = np.asarray(notes, dtype=float).reshape(-1, 3) if len(notes) else np.zeros((0, 3))
        if not np.isfinite(a).all() or (a[:, 1] < a[:, 0]).any():
            raise WeakmirError(f"{path}: song {k}: notes need finite onset <= offset; fix the entry")
        out[str(k)] = a
    return out, path


def _audio(root: Path, sid: str) -> tuple[Path | None, str]:
    for split in ("train", "test", ""):
        for name in AUDIO:
            p = root / split / sid / name if split else root / sid / name
            if p.exists():
                return p, split or ("train" if int(sid) <= TRAIN_IDS else "test")
    return None, ""


def load(root: str | Path, out: str | Path) -> Manifest:
    """Read MIR-ST500 at ``root`` (module docstring) and write ``out/manifest.json``; songs whose audio is
    absent are skipped (and counted in the manifest's provenance-free summary line)."""
    root, out = Path(root), Path(out)
    notes, json_path = read_annotations(root)
    tracks, missing, pending = [], [], []  # files are written once every song is checked
    for sid in sorted(notes, key=lambda s: int(s) if s.isdigit() else 10**9):
        audio, split = _audio(root, sid)
        if audio is None:
            missing.append(sid)
            continue
        info = check(audio, max_channels=2)
        duration = info.frames / info.sample_rate
        a = notes[sid]
        n4 = np.column_stack([a, np.full(len(a), 100.0)]) if len(a) else np.zeros((0, 4))
        f0 = out / "f0" / f"{sid}.csv"
        pending.append((f0, out / "notes" / f"{sid}.csv", n4, duration))
        if split == "train" and hash_unit(f"mir-st500-{sid}") < 0.1:
            split = "valid"
        tracks.append(Track(id=f"mir-st500-{sid}", split=split, sample_rate=info.sample_rate, duration=duration,
                            stems=[], mixture=str(audio.resolve()), f0=str(f0.relative_to(out)), labelling="pitch",
                            provenance={"dataset": "mir-st500", "song": sid, "notes": len(a)}))
    if not tracks:
        raise WeakmirError(f"{root}: {json_path.name} lists {len(notes)} songs but no audio was found under "
                           "train/<id>/Mixture.mp3 or test/<id>/Mixture.mp3; download it with the authors' scripts")
    for f0, notes_path, n4, duration in pending:
        write_f0(f0, *f0_from_notes(n4, duration, 0.01))
        write_notes(notes_path, n4)
    if missing:
        from ...errors import notice

        notice(f"{root}: {len(missing)} of {len(notes)} songs have no audio and are left out (e.g. {missing[0]})")
    m = Manifest(tracks=tracks, root=out.resolve(), name="MIR-ST500", references_in_place=[str(root.resolve())])
    m.write(out / "manifest.json")
    return m


__all__ = ["read_annotations", "load"]
