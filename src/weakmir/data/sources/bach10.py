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
plus one hop, with the rounded median pitch of its frames. With
``notes="score"`` the stems carry the *score* instead, aligned to the audio by
``NN-Name.txt`` (:func:`aligned_score`; the ``.mid`` alone is not aligned).
All tracks go to the ``test`` split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...audio.io import check as audio_check
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


def aligned_score(piece: str | Path) -> list[np.ndarray]:
    """The score of one piece aligned to its recording: one ``(n, 4)`` array (onset s, offset s,
    MIDI pitch, velocity) per instrument, in :data:`INSTRUMENTS` order.

    ``NN-Name.txt`` lists every score note as (audio onset ms, MIDI onset ms, pitch, channel);
    ``NN-Name.mid`` (not aligned) gives the durations. Offsets map through the piecewise-linear
    MIDI → audio time warp of all aligned onsets (extended with the last segment's slope past the
    last one); a note tied over repeated same-pitch MIDI notes lasts to the end of the tie, and no
    note outlasts the next aligned onset of its channel.
    """
    import pretty_midi

    piece = Path(piece)
    txt, mid = piece / f"{piece.name}.txt", piece / f"{piece.name}.mid"
    for f in (txt, mid):
        if not f.exists():
            raise WeakmirError(f"{f}: missing; the aligned score needs the piece's .txt alignment and .mid score")
    try:
        rows = np.loadtxt(txt, ndmin=2)
    except ValueError as e:
        raise WeakmirError(f"{txt}: not a Bach10 alignment (audio ms, MIDI ms, pitch, channel per line): {e}") from e
    if rows.shape[1] != 4:
        raise WeakmirError(f"{txt}: expected 4 columns (audio ms, MIDI ms, pitch, channel), got {rows.shape[1]}")
    pairs = np.unique(rows[:, [1, 0]], axis=0)  # (MIDI ms, audio ms), sorted by MIDI time
    midi_t, audio_t = pairs[:, 0], pairs[:, 1]
    slope = (audio_t[-1] - audio_t[-2]) / max(midi_t[-1] - midi_t[-2], 1e-9) if len(pairs) > 1 else 1.0

    def warp(ms):
        ms = np.asarray(ms, dtype=float)
        return np.where(ms <= midi_t[-1], np.interp(ms, midi_t, audio_t), audio_t[-1] + slope * (ms - midi_t[-1]))

    pm = pretty_midi.PrettyMIDI(str(mid))
    out = []
    for k in range(len(INSTRUMENTS)):
        mine = rows[rows[:, 3] == k + 1]
        mine = mine[np.argsort(mine[:, 1], kind="stable")]
        score = sorted(pm.instruments[k].notes, key=lambda n: n.start) if k < len(pm.instruments) else []
        notes = []
        for j, (_, m_on, pitch, _) in enumerate(mine):
            nxt = mine[j + 1, 1] if j + 1 < len(mine) else np.inf
            end = None
            for n in score:
                if end is None and n.pitch == pitch and abs(n.start * 1000 - m_on) <= 10:
                    end = n.end * 1000
                elif end is not None and n.pitch == pitch and abs(n.start * 1000 - end) <= 10 and n.start * 1000 < nxt:
                    end = n.end * 1000  # a tie: the next same-pitch MIDI note has no aligned onset of its own
            if end is None:
                end = nxt if np.isfinite(nxt) else m_on + 500.0
            end = min(end, nxt)
            notes.append((float(warp(m_on)) / 1000, float(warp(end)) / 1000, int(pitch), 80))
        out.append(np.array(notes, dtype=float).reshape(-1, 4))
    return out


def check(root: str | Path) -> list[Path]:
    """Check a Bach10 folder before any work (its layout, each recording decodable, mono or stereo);
    returns the piece folders. One line naming what is missing and the fix otherwise."""
    root = Path(root)
    if not root.is_dir():
        raise WeakmirError(f"{root}: no such folder; point to the Bach10 root (the folder holding 01-AchGottundHerr/ ...)")
    pieces = sorted(p for p in root.iterdir() if p.is_dir() and p.name[:2].isdigit() and "-" in p.name)
    if not pieces:
        raise WeakmirError(f"{root}: no Bach10 pieces (NN-Name/ folders, e.g. 01-AchGottundHerr/) found; check the path")
    for piece in pieces:
        name = piece.name
        wavs = [piece / f"{name}.wav"] + [piece / f"{name}-{fn}.wav" for _, fn in INSTRUMENTS]
        for f in wavs + [piece / f"{name}-GTF0s.mat"]:
            if not f.is_file():
                raise WeakmirError(f"{f}: missing from the Bach10 layout; restore it or remove the {name}/ folder")
        for f in wavs:
            audio_check(f, max_channels=2)
    return pieces


def load(root: str | Path, out: str | Path, notes: str = "gtnotes") -> Manifest:
    """Build ``out/manifest.json`` for a Bach10 folder; annotations go to ``out/annotations/``.

    ``notes="gtnotes"``: each stem's notes are the transcription ground truth from GTNotes;
    ``notes="score"``: the aligned score (:func:`aligned_score`), what score-supervised training reads.
    """
    if notes not in ("gtnotes", "score"):
        raise WeakmirError(f"unknown Bach10 notes {notes!r}; use 'gtnotes' or 'score'")
    import scipy.io

    root, out = Path(root), Path(out)
    pieces = check(root)
    tracks = []
    for piece in pieces:
        name = piece.name
        mix = piece / f"{name}.wav"
        sr, ch, frames = info(mix)
        f0s = scipy.io.loadmat(str(piece / f"{name}-GTF0s.mat"))["GTF0s"]
        notes_mat = piece / f"{name}-GTNotes.mat"
        gt_notes = scipy.io.loadmat(str(notes_mat))["GTNotes"] if notes_mat.exists() else None
        score = aligned_score(piece) if notes == "score" else None
        stems = []
        for k, (inst, fn) in enumerate(INSTRUMENTS):
            path = piece / f"{name}-{fn}.wav"
            s_sr, s_ch, s_frames = info(path)
            times = FIRST + np.arange(f0s.shape[1]) * HOP
            hz = _midi_to_hz(f0s[k])
            f0_path = out / "annotations" / name / f"{inst}.f0.csv"
            write_f0(f0_path, times, hz, (hz > 0).astype(int))
            notes_path = None
            if score is not None:
                notes_path = out / "annotations" / name / f"{inst}.score.csv"
                write_notes(notes_path, score[k])
            elif gt_notes is not None:
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
    m = Manifest(tracks=tracks, root=out.resolve(), name="Bach10", references_in_place=[str(root.resolve())])
    m.write(out / "manifest.json")
    return m
