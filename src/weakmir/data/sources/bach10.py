"""Bach10 (Duan & Pardo): ten Bach chorales played by violin, clarinet, saxophone, bassoon.

Citation: Z. Duan, B. Pardo, C. Zhang, "Multiple fundamental frequency
estimation by modeling spectral peaks and non-peak regions", IEEE TASLP 2010;
Z. Duan, B. Pardo, "Soundprism", IEEE JSTSP 2011. Licence: research use.

Expected tree (the dataset's own; the saxophone file is spelt "saxphone")::

    ROOT/
      01-AchGottundHerr/
        01-AchGottundHerr.wav                 mixture, 44.1 kHz mono
        01-AchGottundHerr-violin.wav          one recording per instrument
        01-AchGottundHerr-clarinet.wav
        01-AchGottundHerr-saxphone.wav
        01-AchGottundHerr-bassoon.wav
        01-AchGottundHerr-GTF0s.mat           GTF0s: 4 x frames, MIDI pitch (0 = unpitched)
        01-AchGottundHerr-GTNotes.mat         GTNotes: 4 x 1 cells of notes (frame index, pitch per frame)
        01-AchGottundHerr.mid / .txt / .asl   score (NOT aligned) and alignments
      02-.../

Annotations and units: frames are 46 ms windows on a 10 ms hop, frame ``k``
(1-based) centred at ``0.023 + (k - 1) * 0.01`` s; pitches are MIDI numbers.
f0 CSVs are written on that grid in Hz (0 = unvoiced). Notes come from
GTNotes: a note spans from its first frame's centre to its last frame's centre
plus one hop, with the rounded median pitch of its frames. (The score-to-audio
alignment in ``NN-Name.txt`` gives onsets only; score-supervised training will
build its aligned score from it.) All tracks go to the ``test`` split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...audio.io import info
from ...errors import WeakmirError
from ..labels import OPENMIC, STEMS4, LabelSet, instrument_tag
from ..manifest import Manifest, Stem, Track
from ..notes import write_f0, write_notes

INSTRUMENTS = (("violin", "violin"), ("clarinet", "clarinet"), ("saxophone", "saxphone"), ("bassoon", "bassoon"))
HOP, FIRST = 0.01, 0.023


def _midi_to_hz(m):
    m = np.asarray(m, dtype=float)
    return np.where(m > 0, 440.0 * 2 ** ((m - 69) / 12), 0.0)


def load(root: str | Path, out: str | Path) -> Manifest:
    """Build ``out/manifest.json`` for a Bach10 folder; annotations go to ``out/annotations/``."""
    import scipy.io

    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise WeakmirError(f"{root}: no such folder; point to the Bach10 root (the folder holding 01-AchGottundHerr/ ...)")
    pieces = sorted(p for p in root.iterdir() if p.is_dir() and p.name[:2].isdigit() and "-" in p.name)
    if not pieces:
        raise WeakmirError(f"{root}: no Bach10 pieces (NN-Name/ folders) found; check the path")
    tracks = []
    for piece in pieces:
        name = piece.name
        mix = piece / f"{name}.wav"
        for f in [mix] + [piece / f"{name}-{fn}.wav" for _, fn in INSTRUMENTS] + [piece / f"{name}-GTF0s.mat"]:
            if not f.exists():
                raise WeakmirError(f"{f}: missing from the Bach10 layout; restore it or remove the {name}/ folder")
        sr, ch, frames = info(mix)
        f0s = scipy.io.loadmat(str(piece / f"{name}-GTF0s.mat"))["GTF0s"]
        notes_mat = piece / f"{name}-GTNotes.mat"
        gt_notes = scipy.io.loadmat(str(notes_mat))["GTNotes"] if notes_mat.exists() else None
        stems = []
        for k, (inst, fn) in enumerate(INSTRUMENTS):
            path = piece / f"{name}-{fn}.wav"
            s_sr, s_ch, s_frames = info(path)
            times = FIRST + np.arange(f0s.shape[1]) * HOP
            hz = _midi_to_hz(f0s[k])
            f0_path = out / "annotations" / name / f"{inst}.f0.csv"
            write_f0(f0_path, times, hz, (hz > 0).astype(int))
            notes_path = None
            if gt_notes is not None:
                rows = []
                for cell in np.ravel(gt_notes[k][0]):
                    a = np.asarray(cell, dtype=float)
                    if a.size == 0:
                        continue
                    fr, pitch = a[0], a[1]
                    on = FIRST + (fr.min() - 1) * HOP
                    off = FIRST + (fr.max() - 1) * HOP + HOP
                    rows.append((on, off, int(round(float(np.median(pitch)))), 80))
                notes_path = out / "annotations" / name / f"{inst}.notes.csv"
                write_notes(notes_path, np.array(rows).reshape(-1, 4))
            stems.append(Stem(
                id=inst, path=str(path.resolve()), sample_rate=s_sr, channels=s_ch, frames=s_frames,
                labels=LabelSet.complete(["other"], STEMS4), true_labels=["other"], instruments=[inst],
                notes=str(notes_path.relative_to(out)) if notes_path else None,
                f0=str(f0_path.relative_to(out)), provenance={"dataset": "bach10", "file": path.name},
            ))
        tags = sorted({instrument_tag(i) for i, _ in INSTRUMENTS if instrument_tag(i)}, key=OPENMIC.index)
        tracks.append(Track(
            id=name, split="test", sample_rate=sr, duration=frames / sr, stems=stems, mixture=str(mix.resolve()),
            tags=LabelSet.complete(tags, OPENMIC), true_tags=tags,
            provenance={"dataset": "bach10", "root": str(root.resolve())},
        ))
    m = Manifest(tracks=tracks, root=out.resolve(), name="Bach10")
    m.write(out / "manifest.json")
    return m
