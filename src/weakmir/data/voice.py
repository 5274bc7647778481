"""The voice view of a manifest: mixture, voice stem and voice f0 per track (majl_wei2024's data).

A track serves joint singing-voice separation and pitch estimation with what it is labelled with
(:func:`labelling`):

* ``full``: a voice stem (a stem whose observed labels include ``vocals``) and its f0;
* ``stems``: a voice stem, no f0 (MUSDB18's kind);
* ``pitch``: a mixture and the voice's f0, no voice stem (MIR-ST500's kind).

The f0 is the track's ``f0`` file, else the voice stem's. An explicit ``labelling`` hides what it does
not name (a ``stems`` track's f0 is not read, a ``pitch`` track's stems are not read), which is how one
corpus gives all three views (:func:`with_labelling`). The mixture is the track's ``mixture``, else the
sum of its observed stems.

:func:`load` reads the view at one sample rate, mono (channels averaged), with the f0 put on the frame
grid of a hop (frame ``k`` at ``k * hop`` s: the centred STFT frames of the models).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..audio.io import load as load_audio
from ..audio.io import resample
from ..errors import ManifestError
from .manifest import LABELLINGS, Manifest, Track
from .notes import read_f0

VOICE = "vocals"


def voice_stem(track: Track):
    """The observed stem labelled ``vocals`` (the first when several), or None."""
    for s in track.observed_stems():
        if VOICE in s.labels.present:
            return s
    return None


def f0_path(track: Track) -> str | None:
    """The voice's f0 file: the track's ``f0``, else the voice stem's."""
    if track.f0 is not None:
        return track.f0
    s = voice_stem(track)
    return s.f0 if s is not None else None


def labelling(track: Track) -> str | None:
    """``"full"``, ``"stems"`` or ``"pitch"`` (module docstring); None when the track has neither a
    voice stem nor a voice f0."""
    if track.labelling is not None:
        return track.labelling
    stem, f0 = voice_stem(track) is not None, f0_path(track) is not None
    if stem and f0:
        return "full"
    return "stems" if stem else "pitch" if f0 else None


def with_labelling(manifest: Manifest, label: str, tracks=None) -> Manifest:
    """A copy of ``manifest`` (its ``tracks``, default all) with every track's labelling set to ``label``."""
    if label not in LABELLINGS:
        raise ManifestError(f"unknown labelling {label!r}; use one of {', '.join(LABELLINGS)}")
    chosen = manifest.tracks if tracks is None else tracks
    return dataclasses.replace(manifest, tracks=[dataclasses.replace(t, labelling=label) for t in chosen])


def check(manifest: Manifest, where=None) -> dict:
    """Check every track has what its labelling says; returns ``{labelling: count}`` (None: unusable)."""
    where = where or manifest.path or "manifest"
    counts: dict = {}
    for t in manifest.tracks:
        lab = labelling(t)
        if lab in ("full", "stems") and voice_stem(t) is None:
            raise ManifestError(f"{where}: track {t.id!r} is labelled {lab!r} but has no stem labelled 'vocals'; "
                                "label the voice stem 'vocals' or set \"labelling\": \"pitch\"")
        if lab in ("full", "pitch") and f0_path(t) is None:
            raise ManifestError(f"{where}: track {t.id!r} is labelled {lab!r} but has no voice f0; add an f0 CSV "
                                "(track \"f0\" or the voice stem's) or set \"labelling\": \"stems\"")
        if lab == "pitch" and t.mixture is None:
            raise ManifestError(f"{where}: track {t.id!r} is labelled 'pitch' but has no mixture; add the mixture audio")
        counts[lab] = counts.get(lab, 0) + 1
    return counts


def f0_on_grid(times, freq, voicing, n_frames: int, hop_s: float) -> np.ndarray:
    """f0 (Hz, 0 = unvoiced) at frames ``k * hop_s``, ``k < n_frames``: the nearest annotated frame when one
    lies within half the annotation's spacing, else unvoiced.

    Shape: ``(n,)`` series -> ``(n_frames,)``.
    """
    times, freq = np.asarray(times, float), np.asarray(freq, float)
    f = np.where(np.asarray(voicing) > 0, freq, 0.0)
    out = np.zeros(n_frames, np.float32)
    if len(times) == 0:
        return out
    grid = np.arange(n_frames) * hop_s
    k = np.clip(np.searchsorted(times, grid), 1, max(len(times) - 1, 1))
    if len(times) > 1:
        left = np.abs(grid - times[k - 1]) <= np.abs(times[k] - grid)
        k = np.where(left, k - 1, k)
    else:
        k = np.zeros_like(k)
    spacing = float(np.median(np.diff(times))) if len(times) > 1 else hop_s
    near = np.abs(times[k] - grid) <= max(spacing, hop_s) / 2 + 1e-6
    out[near] = f[k[near]]
    return out


@dataclass
class VoiceTrack:
    """One track's voice view at one sample rate, mono.

    Shape: ``mix (L,)``, ``voice (L,)`` or None, ``f0 (T,)`` Hz or None with ``T = L // hop + 1``;
    ``conf_mss``, ``conf_pe`` ``(T,)`` (majl_wei2024 eq. 5-7: 1 for true labels).
    """

    id: str
    labelling: str
    mix: np.ndarray
    voice: np.ndarray | None
    f0: np.ndarray | None
    conf_mss: np.ndarray = field(default=None)
    conf_pe: np.ndarray = field(default=None)

    hop: int = 320

    def __post_init__(self):
        self.conf_mss = np.ones(self.frames, np.float32) if self.conf_mss is None else self.conf_mss
        self.conf_pe = np.ones(self.frames, np.float32) if self.conf_pe is None else self.conf_pe

    @property
    def frames(self) -> int:
        return len(self.mix) // self.hop + 1


def varispeed(track: VoiceTrack, semitones: float, sample_rate: int = 16000) -> VoiceTrack:
    """``track`` played ``2 ** (semitones / 12)`` times as fast: every pitch moves by ``semitones`` and every
    duration by the inverse factor (tape speed: resampling with soxr, no time-stretch artefacts). The f0 (if
    any) moves with it onto the same hop grid; the confidences start again at 1 (they belong to the new audio).
    The id gets ``@{semitones:+.2f}st``.

    Shape: ``mix (L,)`` -> ``(~L / r,)``, ``f0 (T,)`` -> ``(~L / r // hop + 1,)``, ``r = 2 ** (semitones / 12)``.
    """
    r = 2.0 ** (semitones / 12.0)

    def play(x):
        return None if x is None else resample(x[None], sample_rate, sample_rate / r)[0]

    mix, voice = play(track.mix), play(track.voice)
    if voice is not None:
        n = min(len(mix), len(voice))
        mix, voice = mix[:n], voice[:n]
    f0 = None
    if track.f0 is not None:  # frame k of the old grid (k * hop s) is at k * hop / r s of the new one, r times higher
        hop_s = track.hop / sample_rate
        old = np.arange(len(track.f0)) * hop_s / r
        f0 = f0_on_grid(old, track.f0 * r, track.f0 > 0, len(mix) // track.hop + 1, hop_s)
    return VoiceTrack(f"{track.id}@{semitones:+.2f}st", track.labelling, mix, voice, f0, hop=track.hop)


def _mono(path, sample_rate: int) -> np.ndarray:
    return load_audio(path, sample_rate=sample_rate)[0].mean(axis=0).astype(np.float32)


def load(manifest: Manifest, split: str | None, sample_rate: int = 16000, hop: int = 320) -> list[VoiceTrack]:
    """The voice view of the tracks of ``split`` (None: all) that have one (module docstring)."""
    out = []
    for t in manifest.tracks if split is None else manifest.split(split):
        lab = labelling(t)
        if lab is None:
            continue
        stem = voice_stem(t) if lab in ("full", "stems") else None
        if t.mixture is not None:
            mix = _mono(manifest.resolve(t.mixture), sample_rate)
        else:
            parts = [_mono(manifest.resolve(s.path), sample_rate) for s in t.observed_stems()]
            n = max(len(p) for p in parts)
            mix = np.sum([np.pad(p, (0, n - len(p))) for p in parts], axis=0).astype(np.float32)
        voice = None
        if stem is not None:
            voice = _mono(manifest.resolve(stem.path), sample_rate)
            n = min(len(voice), len(mix))
            mix, voice = mix[:n], voice[:n]
        f0 = None
        if lab in ("full", "pitch"):
            path = f0_path(t)
            f0 = f0_on_grid(*read_f0(manifest.resolve(path)), len(mix) // hop + 1, hop / sample_rate)
        out.append(VoiceTrack(t.id, lab, mix, voice, f0, hop=hop))
    return out


__all__ = ["VOICE", "voice_stem", "f0_path", "labelling", "with_labelling", "check", "f0_on_grid", "VoiceTrack",
           "varispeed", "load"]
