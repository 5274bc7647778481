"""Note transcription metrics (mir_eval.transcription), from note lists or piano rolls.

Conventions
-----------
* Notes are ``(n, 3+)`` arrays ``onset_s, offset_s, midi_pitch[, velocity]``
  (weakmir's notes CSV); they are passed to mir_eval as intervals and Hz.
* Matching is mir_eval's: onset within 50 ms, pitch within 50 cents, and for
  "with offsets" the offset within max(50 ms, 20 % of the reference note's
  duration).
* ``note_accuracy`` (score-supervised_hung2021 Table 2, "note accuracy
  calculated by mir_eval"): the paper does not give its formula. We use the
  note-level accuracy of Dixon (2000), ``TP / (TP + FP + FN)``, with the
  notes matched by mir_eval on onsets (``offset_ratio=None``); our reading,
  stated here so the numbers can be compared honestly.
* ``false_positive_rate`` (Hung §4, "false positive rate of detected notes"):
  ``FP / detected notes`` = 1 − onset precision.
* Piano rolls ``(88, frames)`` (MIDI 21 = row 0) become notes by runs of
  frames above ``threshold`` (:func:`roll_to_notes`); frame ``k`` starts at
  ``k / frame_rate`` seconds.
"""

from __future__ import annotations

import warnings

import mir_eval
import numpy as np

PIANO_LOW = 21


def _hz(p):
    return 440.0 * 2.0 ** ((np.asarray(p, dtype=float) - 69.0) / 12.0)


def validate(ref_notes, est_notes) -> None:
    """Raise ``ValueError`` unless both are ``(n, >=3)`` with finite onset < offset and pitch > 0."""
    for name, n in (("reference", ref_notes), ("estimate", est_notes)):
        a = np.asarray(n, dtype=float)
        if a.size == 0:
            continue
        if a.ndim != 2 or a.shape[1] < 3:
            raise ValueError(f"{name}: notes must be (n, 3+) onset, offset, midi pitch; got {a.shape}")
        if not np.isfinite(a[:, :3]).all():
            raise ValueError(f"{name}: NaN or inf in notes")
        if np.any(a[:, 1] <= a[:, 0]):
            raise ValueError(f"{name}: every note needs onset < offset")
        if np.any(a[:, 2] <= 0):
            raise ValueError(f"{name}: MIDI pitches must be positive")


def _split(notes):
    a = np.asarray(notes, dtype=float).reshape(-1, np.asarray(notes).shape[-1] if np.asarray(notes).size else 3)
    return a[:, :2], _hz(a[:, 2])


def evaluate(ref_notes, est_notes, onset_tolerance: float = 0.05, pitch_tolerance: float = 50.0) -> dict:
    """P/R/F with and without offsets, onset/offset-only scores, note accuracy, FP rate.

    Shape: ``(n, 3+)`` note arrays (see module docstring). Returns named scalars.
    """
    validate(ref_notes, est_notes)
    ri, rp = _split(ref_notes)
    ei, ep = _split(est_notes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = dict(mir_eval.transcription.evaluate(ri, rp, ei, ep, onset_tolerance=onset_tolerance,
                                                   pitch_tolerance=pitch_tolerance))
        matched = mir_eval.transcription.match_notes(ri, rp, ei, ep, onset_tolerance=onset_tolerance,
                                                     pitch_tolerance=pitch_tolerance, offset_ratio=None)
    tp, n_ref, n_est = len(matched), len(ri), len(ei)
    fp, fn = n_est - tp, n_ref - tp
    out = {k.lower().replace("-", "_"): float(v) for k, v in res.items()}
    out["note_accuracy"] = tp / (tp + fp + fn) if (tp + fp + fn) else 1.0
    out["false_positive_rate"] = fp / n_est if n_est else 0.0
    out["n_ref"], out["n_est"] = float(n_ref), float(n_est)
    return out


def roll_to_notes(roll, frame_rate: float, threshold: float = 0.5, min_frames: int = 1) -> np.ndarray:
    """Notes from a piano roll: each run of frames above ``threshold`` is a note.

    Shape: ``(88, frames)`` -> ``(n, 4)`` onset s, offset s, MIDI pitch, velocity
    (peak activation x 127, at least 1).
    """
    r = np.asarray(roll, dtype=float)
    if r.ndim != 2 or r.shape[0] != 88:
        raise ValueError(f"piano roll must be (88, frames), got {r.shape}")
    on = r > threshold
    notes = []
    for k in range(88):
        d = np.diff(np.concatenate([[0], on[k].astype(np.int8), [0]]))
        starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        for s, e in zip(starts, stops):
            if e - s >= min_frames:
                notes.append((s / frame_rate, e / frame_rate, k + PIANO_LOW, max(1.0, round(127 * r[k, s:e].max()))))
    a = np.array(notes, dtype=float).reshape(-1, 4)
    return a[np.lexsort((a[:, 2], a[:, 0]))]


def evaluate_rolls(ref_roll, est_roll, frame_rate: float, threshold: float = 0.5) -> dict:
    """:func:`evaluate` on two piano rolls ``(88, frames)``."""
    return evaluate(roll_to_notes(ref_roll, frame_rate, 0.5), roll_to_notes(est_roll, frame_rate, threshold))
