"""Score notes and f0 annotations, with their sidecar file formats.

Units: seconds, MIDI pitch numbers (A4 = 69), Hz.

* notes: array ``(n, 4)`` float64 of ``onset_s, offset_s, midi_pitch, velocity``,
  sorted by onset. CSV with header ``onset_s,offset_s,midi_pitch,velocity``.
* f0: ``times (n,)`` s, ``frequency (n,)`` Hz (0 when unvoiced), ``voicing (n,)``
  in {0, 1}, on a uniform hop. CSV with header ``time_s,frequency_hz,voicing``
  (mir_eval's melody convention of 0 Hz for unvoiced frames).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import ManifestError
from ..files import atomic_write_text

NOTES_HEADER = "onset_s,offset_s,midi_pitch,velocity"
F0_HEADER = "time_s,frequency_hz,voicing"


def as_notes(notes) -> np.ndarray:
    """Validate and sort a note array ``(n, 4)``."""
    a = np.asarray(notes, dtype=np.float64).reshape(-1, 4)
    if len(a) and (not np.isfinite(a).all() or (a[:, 1] < a[:, 0]).any() or (a[:, 0] < 0).any()):
        raise ValueError("notes need finite onset <= offset, onset >= 0")
    return a[np.lexsort((a[:, 2], a[:, 0]))]


def write_notes(path, notes) -> None:
    a = as_notes(notes)
    rows = "".join(f"{on:.6f},{off:.6f},{int(p)},{int(v)}\n" for on, off, p, v in a)
    atomic_write_text(Path(path), NOTES_HEADER + "\n" + rows)


def read_notes(path) -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"{path}: notes file is missing; re-create the corpus or drop the 'notes' entry")
    try:
        with warnings.catch_warnings():  # a part that rests throughout has a header-only CSV
            warnings.filterwarnings("ignore", message=".*input contained no data.*")
            a = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        return as_notes(a)
    except ValueError as e:
        raise ManifestError(f"{path}: malformed notes CSV ({e}); expected header {NOTES_HEADER}") from e


def is_monophonic(notes, tolerance: float = 1e-3) -> bool:
    """True when no two notes overlap by more than ``tolerance`` seconds."""
    a = as_notes(notes)
    if len(a) < 2:
        return True
    ends = np.maximum.accumulate(a[:, 1])
    return bool((a[1:, 0] >= ends[:-1] - tolerance).all())


def f0_from_notes(notes, duration: float, hop: float = 0.01) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame-wise f0 of a monophonic part from its notes.

    Frame ``k`` at ``t = k * hop`` is voiced when a note sounds at ``t``
    (``onset <= t < offset``); a later onset wins where notes touch.

    Returns:
        ``times (n,)``, ``frequency (n,)`` Hz (0 unvoiced), ``voicing (n,)``;
        ``n = floor(duration / hop) + 1``.
    """
    a = as_notes(notes)
    n = int(np.floor(duration / hop + 1e-9)) + 1
    times = np.arange(n) * hop
    pitch = np.zeros(n)
    for on, off, p, _ in a:
        k0, k1 = int(np.ceil(on / hop - 1e-9)), int(np.ceil(off / hop - 1e-9))
        pitch[max(k0, 0):min(k1, n)] = p
    voiced = (pitch > 0).astype(np.float64)
    freq = np.where(voiced > 0, 440.0 * 2.0 ** ((pitch - 69.0) / 12.0), 0.0)
    return times, freq, voiced


def write_f0(path, times, frequency, voicing) -> None:
    rows = "".join(f"{t:.4f},{f:.4f},{int(v)}\n" for t, f, v in zip(times, frequency, voicing))
    atomic_write_text(Path(path), F0_HEADER + "\n" + rows)


def read_f0(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"{path}: f0 file is missing; re-create the corpus or drop the 'f0' entry")
    try:
        a = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except ValueError as e:
        raise ManifestError(f"{path}: malformed f0 CSV ({e}); expected header {F0_HEADER}") from e
    if a.size and a.shape[1] != 3:
        raise ManifestError(f"{path}: f0 CSV rows need 3 columns, found {a.shape[1]}; expected header {F0_HEADER}")
    if a.size and not np.isfinite(a).all():
        row = int(np.argwhere(~np.isfinite(a))[0, 0]) + 2
        raise ManifestError(f"{path}: NaN or infinite value on line {row}; write 0 Hz with voicing 0 for unvoiced frames")
    if a.size and ((a[:, 1] < 0).any() or (np.diff(a[:, 0]) <= 0).any()):
        raise ManifestError(f"{path}: f0 needs increasing times and frequencies >= 0 Hz; fix the file")
    a = a.reshape(-1, 3)
    return a[:, 0], a[:, 1], a[:, 2]


def read_midi_notes(path) -> np.ndarray:
    """Every pitched note of a MIDI file as ``(n, 4)`` notes (drum tracks left out); one line naming the
    file when it cannot be parsed."""
    import pretty_midi

    path = Path(path)
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as e:  # noqa: BLE001  (mido / pretty_midi raise many kinds on a corrupt file)
        raise ManifestError(f"{path}: not a readable MIDI file ({type(e).__name__}: {e}); re-export it") from e
    try:
        return as_notes([(n.start, n.end, n.pitch, n.velocity) for i in pm.instruments if not i.is_drum
                         for n in i.notes])
    except ValueError as e:
        raise ManifestError(f"{path}: {e}; re-export the MIDI file") from e
