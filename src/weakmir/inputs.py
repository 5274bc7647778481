"""What a user hands a verb, checked before any work starts: one function per kind.

============================  =========================  ==============================================
kind                          function                   refused with one line naming it and the fix
============================  =========================  ==============================================
audio file                    :func:`audio_files`        missing, a folder, empty, undecodable, cut
                                                         short (FLAC/MP3/OGG), more channels than the
                                                         model takes; conversions (resampling, up- or
                                                         down-mixing, a WAV shorter than its header)
                                                         are said on stderr (:func:`~weakmir.errors.notice`)
manifest                      ``Manifest.read``          missing, a folder, malformed, empty, unknown
                                                         labels or splits, files missing or outside the
                                                         corpus folder (:mod:`weakmir.data.manifest`)
checkpoint                    :func:`checkpoint`         missing, unreadable, not weakmir's, a model of
                                                         another role (a transcriptor given to separate)
notes / f0 / tags estimate    :func:`notes_estimate`,    unparsable, NaN or infinite values, tag scores
                              :func:`f0_estimate`,       that are not probabilities
                              :func:`tag_scores`
output folder                 :func:`output_folder`      a file, not writable, an input, or would
                                                         overwrite an input (unless ``overwrite``)
output names                  :func:`output_names`       two inputs that would write one output folder
numeric option                :func:`number`             outside its range
torch device                  :func:`device`             unknown, or not on this machine
============================  =========================  ==============================================

Every function raises :class:`~weakmir.errors.WeakmirError` (the CLI prints ``weakmir: error: ...`` and
exits 2) and writes nothing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .audio.io import AudioInfo
from .audio.io import check as check_audio
from .data.notes import read_f0, read_midi_notes, read_notes
from .errors import WeakmirError
from .files import check_output_folder, read_json

output_folder = check_output_folder


def number(value, option: str, low: float | None = None, high: float | None = None, low_open: bool = False,
           high_open: bool = False):
    """``value`` when it is a finite number in the range (``low``/``high`` inclusive unless ``*_open``);
    else one line naming ``option``, the value and the range."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
        want = (f"in {lo}, {hi}" if low is not None and high is not None else
                f"{'>' if low_open else '>='} {low:g}" if low is not None else f"{'<' if high_open else '<='} {high:g}")
        raise WeakmirError(f"{option} {value}: must be a number {want}")
    return value


def audio_files(paths: Iterable, sample_rate: int | None = None, channels: int | None = None,
                max_channels: int | None = None) -> list[AudioInfo]:
    """:func:`weakmir.audio.io.check` every file (in order, stopping at the first bad one)."""
    return [check_audio(p, sample_rate=sample_rate, channels=channels, max_channels=max_channels) for p in paths]


def output_names(paths: Iterable, name: Callable[[Path], str], option: str = "-o") -> dict[str, Path]:
    """``{output name: input}``; two inputs with one output name (``a/mix.flac``, ``b/mix.flac`` both
    writing ``OUT/mix/``) are refused, so no result silently replaces another."""
    seen: dict[str, Path] = {}
    for p in map(Path, paths):
        n = name(p)
        if n in seen:
            if os.path.realpath(seen[n]) == os.path.realpath(p):
                raise WeakmirError(f"{p}: given twice; pass each file once")
            raise WeakmirError(f"{p} and {seen[n]}: both would write to {option} .../{n}/; rename one, or run them "
                               f"with different {option} folders")
        seen[n] = p
    return seen


def device(value: str, option: str = "--device") -> str:
    """A torch device this machine has (``cpu``, ``cuda``, ``cuda:1``, ``mps``): an unknown name, or a
    device this torch build or machine lacks, is refused before any work (torch's own error came after the
    output folder was made, as a traceback)."""
    if value == "cpu":
        return value
    import torch

    try:
        d = torch.device(value)
    except RuntimeError:
        raise WeakmirError(f"{option} {value}: not a torch device; give cpu, cuda, cuda:N or mps") from None
    have = {"cpu": lambda: True, "cuda": torch.cuda.is_available,
            "mps": lambda: getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if not have.get(d.type, lambda: False)():
        raise WeakmirError(f"{option} {value}: this machine's torch ({torch.__version__}) has no {d.type} device; "
                           "use --device cpu")
    if d.type == "cuda" and d.index is not None and d.index >= torch.cuda.device_count():
        raise WeakmirError(f"{option} {value}: there are {torch.cuda.device_count()} CUDA devices; give cuda:0 to "
                           f"cuda:{torch.cuda.device_count() - 1}")
    return value


# the verbs that read a checkpoint of each model role (what a refusal names)
VERBS_OF_ROLE = {
    "separator": "weakmir separate",
    "voice_separator": "weakmir separate, which writes the voice and the rest",
    "voice_pitch": "weakmir pitch and weakmir separate",
    "pitch_estimator": "weakmir pitch, which tracks a file as a clean voice",
    "transcriptor": "weakmir transcribe",
    "classifier": "weakmir refine (its psi_N.ckpt)",
    "tagger": "weakmir tag",
    "embedding": "weakmir features and the recipe key embedding.checkpoint",
    "dynamic_weights": "no verb: they weight MAJL Stage I's losses in training",
}


def checkpoint(path_or_name, role: str | tuple[str, ...], verb: str):
    """Load a checkpoint (or an untrained registered model by name) whose model has ``role`` (or one of
    the roles of a tuple); returns ``(model, meta)``. A model of another role is refused, naming the verb
    that takes it (:data:`VERBS_OF_ROLE`)."""
    from .train.checkpoint import load

    roles = (role,) if isinstance(role, str) else tuple(role)
    model, meta = load(path_or_name)
    has = getattr(model, "role", None)
    if has not in roles:
        takes = VERBS_OF_ROLE.get(has, "no verb")
        a = "an" if roles[0][0] in "aeiou" else "a"
        raise WeakmirError(f"{path_or_name}: holds a {meta.get('model')} {has or 'model'}, not {a} "
                           f"{' / '.join(roles)}; {verb} needs {a} {' / '.join(roles)} checkpoint ({has} "
                           f"checkpoints are for {takes})")
    return model, meta


def f0_estimate(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An f0 CSV (``time_s,frequency_hz,voicing``): finite, times increasing, Hz >= 0."""
    return read_f0(path)


def notes_estimate(path) -> np.ndarray:
    """A notes CSV or a MIDI file (``.mid``/``.midi``) as ``(n, 4)`` notes."""
    path = Path(path)
    return read_midi_notes(path) if path.suffix.lower() in (".mid", ".midi") else read_notes(path)


def tag_scores(path) -> dict[str, dict[str, float]]:
    """A tag-scores JSON ``{track_id: {class: probability}}``; every score a number in [0, 1]."""
    scores = read_json(path, "tag-scores JSON", "write {track_id: {class: score}}",
                       missing="tagging estimates are a JSON file {track_id: {class: score}}")
    if not isinstance(scores, dict) or not all(isinstance(v, dict) for v in scores.values()):
        raise WeakmirError(f"{path}: expected {{track_id: {{class: score}}}}; write one object of scores per track")
    for tid, per in scores.items():
        for c, v in per.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0.0 <= v <= 1.0):
                raise WeakmirError(f"{path}: track {tid!r} class {c!r} has score {v!r}; scores must be probabilities "
                                   "in [0, 1] (NaN, strings and logits are refused)")
    return scores


__all__ = ["number", "device", "audio_files", "output_names", "checkpoint", "VERBS_OF_ROLE", "output_folder",
           "f0_estimate", "notes_estimate", "tag_scores"]
