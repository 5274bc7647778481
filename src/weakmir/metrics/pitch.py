"""Melody / f0 metrics: RPA, RCA, OA, voicing recall and false alarm (mir_eval.melody); octave errors by direction.

Conventions
-----------
* f0 in Hz on any hop; ``0`` (or a negative value) is unvoiced, as mir_eval.
  Voicing can also be given explicitly (``ref_voicing`` / ``est_voicing``, 0/1
  or, for the estimate, a confidence in [0, 1]); then frequencies of unvoiced
  frames are kept as pitch guesses (mir_eval's negative-frequency convention).
* Resampling: as ``mir_eval.melody.evaluate``, both series are put on the
  reference's time grid (``hop=None``) or on a uniform grid of ``hop`` seconds:
  frequencies are interpolated linearly in cents, voicing by nearest neighbour
  (``mir_eval.melody.to_cent_voicing``). Our f0 files use a 10 ms hop, MIREX's.
* Tolerance: 50 cents (``cent_tolerance``), MIREX's and mir_eval's default.
* Nothing is re-derived: the numbers are mir_eval's.
"""

from __future__ import annotations

import warnings

import mir_eval
import numpy as np

NAMES = {
    "Voicing Recall": "voicing_recall",
    "Voicing False Alarm": "voicing_false_alarm",
    "Raw Pitch Accuracy": "raw_pitch_accuracy",
    "Raw Chroma Accuracy": "raw_chroma_accuracy",
    "Overall Accuracy": "overall_accuracy",
}


def validate(ref_time, ref_freq, est_time, est_freq) -> None:
    """Raise ``ValueError`` on malformed series (lengths, non-increasing times, NaN)."""
    for name, t, f in (("reference", ref_time, ref_freq), ("estimate", est_time, est_freq)):
        t, f = np.asarray(t, dtype=float), np.asarray(f, dtype=float)
        if t.ndim != 1 or t.shape != f.shape:
            raise ValueError(f"{name}: times {t.shape} and frequencies {f.shape} must be 1-D of one length")
        if len(t) == 0:
            raise ValueError(f"{name}: empty f0 series")
        if not (np.isfinite(t).all() and np.isfinite(f).all()):
            raise ValueError(f"{name}: NaN or inf in f0 series")
        if np.any(np.diff(t) <= 0):
            raise ValueError(f"{name}: times must increase strictly")


def _signed(freq, voicing):
    f = np.abs(np.asarray(freq, dtype=float))
    if voicing is None:
        return np.asarray(freq, dtype=float)
    return np.where(np.asarray(voicing) > 0, f, -f)


def evaluate(ref_time, ref_freq, est_time, est_freq, ref_voicing=None, est_voicing=None,
             hop: float | None = None, cent_tolerance: float = 50.0) -> dict:
    """mir_eval.melody metrics, with snake_case names.

    Shape: every array ``(n,)``; times in s, frequencies in Hz.

    Returns:
        ``voicing_recall, voicing_false_alarm, raw_pitch_accuracy,
        raw_chroma_accuracy, overall_accuracy`` (fractions in [0, 1]).
    """
    validate(ref_time, ref_freq, est_time, est_freq)
    ref_freq = _signed(ref_freq, ref_voicing)
    if ref_voicing is not None:
        ref_freq = np.where(np.asarray(ref_voicing) > 0, ref_freq, 0.0)
    kw = {"cent_tolerance": cent_tolerance}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if est_voicing is not None:
            est_v = np.clip(np.asarray(est_voicing, dtype=float), 0, 1)
            res = mir_eval.melody.evaluate(np.asarray(ref_time, float), ref_freq, np.asarray(est_time, float),
                                           np.abs(np.asarray(est_freq, float)), est_voicing=est_v, hop=hop, **kw)
        else:
            res = mir_eval.melody.evaluate(np.asarray(ref_time, float), ref_freq, np.asarray(est_time, float),
                                           np.asarray(est_freq, float), hop=hop, **kw)
    return {NAMES[k]: float(v) for k, v in res.items() if k in NAMES}


def octave_errors(ref_time, ref_freq, est_time, est_freq, hop: float | None = None,
                  cent_tolerance: float = 50.0) -> dict:
    """Shares of the voiced reference frames whose pitch guess is one octave off: ``octave_up`` (within
    ``cent_tolerance`` of twice the reference) and ``octave_down`` (of half). RCA - RPA counts these and
    every other octave; mir_eval has no split by direction, so this is mir_eval's raw pitch accuracy
    (its resampling, ``mir_eval.melody.to_cent_voicing``, and frames) of the guess moved by -/+ 1200 cents.

    Shape: every array ``(n,)``; times in s, frequencies in Hz; ``ref_freq`` 0 is unvoiced, ``est_freq``
    a guess on every frame (its sign ignored, as RPA ignores voicing; 0 is no guess).

    Returns:
        ``octave_up, octave_down`` (fractions in [0, 1]).
    """
    validate(ref_time, ref_freq, est_time, est_freq)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_v, ref_c, est_v, est_c = mir_eval.melody.to_cent_voicing(
            np.asarray(ref_time, float), np.asarray(ref_freq, float), np.asarray(est_time, float),
            np.abs(np.asarray(est_freq, float)), hop=hop)
        guessed = est_c > 0
        return {name: float(mir_eval.melody.raw_pitch_accuracy(ref_v, ref_c, est_v, np.where(guessed, est_c + shift, 0.0),
                                                               cent_tolerance=cent_tolerance))
                for name, shift in (("octave_up", -1200.0), ("octave_down", 1200.0))}
