"""Mixture + score clips for score-supervised training (score-supervised_hung2021 §2).

Each example is a random clip of a track's *mixture* with its aligned score as
a piano roll per instrument; the isolated stems ride along only for the
supervised upper bound and for evaluation, never for the weakly supervised
losses.

    data = ScoreClips.from_manifest(manifest, instruments=["violin", "clarinet", "saxophone", "bassoon"])
    ex = data[0]   # {"mixture": (1, T), "roll": (I, 88, N), "active": (I,), "sources": (I, 1, T)}

Audio is decoded once into memory, mono, at the models' rate (16 kHz in the
paper); ``N = T // hop + 1`` frames on the centred STFT grid of the models.
A stem's instrument is the first entry of its ``instruments`` field, else its
id; stems of one instrument in a track are summed.
"""

from __future__ import annotations

import numpy as np
import torch

from ..audio.io import load
from ..errors import WeakmirError
from .manifest import Manifest
from .notes import read_notes
from .targets import piano_roll


def stem_instrument(stem) -> str:
    """The instrument a stem is scored as: ``instruments[0]`` or the stem id."""
    return (stem.instruments or [stem.id])[0]


def manifest_instruments(manifest: Manifest) -> list[str]:
    """Instruments with a score in the manifest, in first-seen order."""
    seen: list[str] = []
    for t in manifest.tracks:
        for s in t.stems:
            if s.notes and stem_instrument(s) not in seen:
                seen.append(stem_instrument(s))
    return seen


class ScoreClips(torch.utils.data.Dataset):
    """Random fixed-length clips of mixtures with their piano rolls (see module docstring).

    Args:
        tracks: ``[(mixture (1, T), sources (I, 1, T), notes per instrument)]``.
        seconds: clip length (the paper: 4 s).
        length: examples per epoch; example ``i`` of epoch ``e`` is drawn from
            ``default_rng([seed, e, i])`` so workers and resumed runs agree.
    """

    def __init__(self, tracks, instruments, sample_rate: int = 16000, hop_length: int = 500,
                 seconds: float = 4.0, length: int = 256, seed: int = 0, ids=None):
        if not tracks:
            raise WeakmirError("no tracks with a mixture and a score; check the manifest's splits and notes")
        self.tracks, self.instruments = tracks, list(instruments)
        self.ids = list(ids) if ids is not None else [str(i) for i in range(len(tracks))]
        self.sample_rate, self.hop_length = int(sample_rate), int(hop_length)
        self.samples = int(round(seconds * sample_rate))
        self.length, self.seed, self.epoch = int(length), int(seed), 0

    @classmethod
    def from_manifest(cls, manifest: Manifest, instruments=None, splits=("train",), sample_rate: int = 16000,
                      hop_length: int = 500, seconds: float = 4.0, length: int = 256, seed: int = 0):
        instruments = list(instruments or manifest_instruments(manifest))
        tracks, ids = [], []
        for t in manifest.tracks:
            if t.split not in splits:
                continue
            if t.mixture is None:
                raise WeakmirError(f"{manifest.path}: track {t.id} has no mixture; score-supervised training "
                                   "needs the mixture audio")
            mix, _ = load(manifest.resolve(t.mixture), sample_rate=sample_rate, channels=1)
            sources = np.zeros((len(instruments), 1, mix.shape[1]), np.float32)
            notes = [np.zeros((0, 4)) for _ in instruments]
            for s in t.stems:
                name = stem_instrument(s)
                if name not in instruments or s.hidden:
                    continue
                k = instruments.index(name)
                if s.notes:
                    notes[k] = np.concatenate([notes[k], read_notes(manifest.resolve(s.notes)).reshape(-1, 4)])
                x, _ = load(manifest.resolve(s.clean_path or s.path), sample_rate=sample_rate, channels=1)
                n = min(x.shape[1], mix.shape[1])
                sources[k, :, :n] += x[:, :n]
            tracks.append((mix, sources, notes))
            ids.append(t.id)
        return cls(tracks, instruments, sample_rate, hop_length, seconds, length, seed, ids)

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def roll(self, notes, start: int, frames: int) -> np.ndarray:
        """Piano rolls of a clip starting at sample ``start``: ``(I, 88, frames)``."""
        t0 = start / self.sample_rate
        out = np.zeros((len(self.instruments), 88, frames), np.float32)
        for k, n in enumerate(notes):
            if len(n):
                shifted = n.copy()
                shifted[:, :2] -= t0
                out[k] = piano_roll(shifted[shifted[:, 1] > 0], frames, self.hop_length, self.sample_rate)
        return out

    def clip(self, index: int, start: int) -> dict:
        """The clip of track ``index`` from sample ``start`` (zero-padded past the end)."""
        mix, sources, notes = self.tracks[index]
        T = self.samples
        m = np.zeros((1, T), np.float32)
        s = np.zeros((sources.shape[0], 1, T), np.float32)
        seg = mix[:, start:start + T]
        m[:, :seg.shape[1]] = seg
        s[..., :seg.shape[1]] = sources[..., start:start + T]
        roll = self.roll(notes, start, T // self.hop_length + 1)
        return {"mixture": torch.from_numpy(m), "sources": torch.from_numpy(s), "roll": torch.from_numpy(roll),
                "active": torch.from_numpy(roll.max(axis=(1, 2)) > 0)}

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        k = int(rng.integers(len(self.tracks)))
        n = self.tracks[k][0].shape[1]
        start = int(rng.integers(0, max(n - self.samples, 0) + 1))
        return self.clip(k, start)


__all__ = ["ScoreClips", "manifest_instruments", "stem_instrument"]
