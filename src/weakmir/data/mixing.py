"""Random mixing, shared by every method.

* :class:`StemPool` — the stems of a manifest (observed or clean view) with
  their labels; silence removed as self-refine_koo2023 §4.1 (the kept spans are
  computed once and cached; audio is read from disk per segment, so memory does
  not grow with the corpus).
* :class:`RandomMixer` — self-refine §3.1.1: each class of the vocabulary is
  drawn with a chance rate; for a drawn class one stem labelled with it is
  picked; a random segment of each picked stem goes through the effects chain
  (compression -> reverb -> stereo imaging -> loudness) and the mixture is their
  sum; the multi-hot target is the union of the picked stems' labels.
* :class:`SeparationMixer` — self-refine §3.2: with probability ``p_multi`` one
  multi-labelled stem is picked, the other classes are filled with
  single-labelled stems; targets are grouped so that the estimates of a
  multi-labelled source are summed before the loss
  (:func:`weakmir.data.targets.group_estimates`).
* :class:`MixDataset` — a ``torch.utils.data.Dataset`` over either mixer.
  Example ``i`` of epoch ``e`` is drawn from ``numpy.random.default_rng([seed,
  e, i])``: identical whatever the number of workers, and no global RNG.

Shapes: audio ``(channels, time)``; a batch of sources ``(sources, channels, time)``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np
import torch

from ..audio.effects import EffectsConfig, apply_chain, sample_params
from ..audio.io import info as audio_info
from ..audio.io import load, read_segment, resample, to_channels
from ..audio.loudness import integrated_loudness
from ..audio.silence import remove_silence
from ..errors import WeakmirError
from .labels import STEMS4
from .manifest import Manifest
from .targets import group_targets, separation_groups


@dataclass
class PoolStem:
    """A stem in a pool: file, labels, native rate, and kept (non-silent) spans."""

    key: str
    path: str
    labels: frozenset
    sample_rate: int
    frames: int
    intervals: np.ndarray  # (n, 2) sample spans in the file's rate

    @property
    def kept(self) -> int:
        return int((self.intervals[:, 1] - self.intervals[:, 0]).sum()) if len(self.intervals) else 0


class StemPool:
    """Stems with labels, ready for random segment reads.

    Args:
        stems: list of :class:`PoolStem`.
        sample_rate, channels: what segments are returned as.
    """

    def __init__(self, stems: list[PoolStem], sample_rate: int = 44100, channels: int = 2, vocab=STEMS4):
        self.stems = [s for s in stems if s.kept > 0]
        if not self.stems:
            raise WeakmirError("no non-silent stems to mix; check the manifest's splits and audio")
        self.sample_rate, self.channels, self.vocab = sample_rate, channels, tuple(vocab)
        self.by_label = {v: [i for i, s in enumerate(self.stems) if v in s.labels] for v in self.vocab}
        self.single = {v: [i for i in self.by_label[v] if len(self.stems[i].labels) == 1] for v in self.vocab}
        self.multi = [i for i, s in enumerate(self.stems) if len(s.labels) > 1]
        self._audio: dict = {}

    def preload(self, max_bytes: int = 2 << 30) -> "StemPool":
        """Decode every stem into memory once (small corpora, many passes).

        Segment reads then slice arrays instead of seeking in compressed files,
        which is most of a training step's data time on FLAC stems with many
        silent gaps. Refuses pools over ``max_bytes`` of float32 audio.
        """
        need = sum(s.frames * self.channels * 4 for s in self.stems)
        if need > max_bytes:
            raise WeakmirError(f"pool needs {need / 2**30:.1f} GiB in memory (limit {max_bytes / 2**30:.1f} GiB); "
                               "train without preloading")
        for s in self.stems:
            if s.path not in self._audio:
                self._audio[s.path] = load(s.path)[0]
        return self

    def _read(self, s: PoolStem, start: int, frames: int) -> np.ndarray:
        x = self._audio.get(s.path)
        if x is None:
            return read_segment(s.path, start, frames)
        return x[:, start:start + frames]

    @classmethod
    def from_manifest(
        cls,
        manifest: Manifest,
        view: str = "observed",
        splits=("train",),
        sample_rate: int = 44100,
        channels: int = 2,
        trim_silence: bool = True,
        cache: bool = True,
        progress: bool = False,
        labels_override: dict | None = None,
    ) -> "StemPool":
        """Pool of a manifest's stems.

        Args:
            view: ``"observed"`` (stem audio and observed labels, hidden stems
                left out) or ``"clean"`` (clean audio and true labels).
            labels_override: ``{(track_id, stem_id): [labels]}`` to use instead
                (e.g. refined labels).
            cache: keep silence spans in ``<manifest root>/.weakmir-cache/``.
        """
        if view not in ("observed", "clean"):
            raise WeakmirError(f"unknown pool view {view!r}; use 'observed' or 'clean'")
        entries = []
        for t in manifest.tracks:
            if t.split not in splits:
                continue
            if view == "observed":
                items = [(s, s.path, s.observed) for s in t.observed_stems()]
            else:
                items = t.clean_stems()
            for s, path, labels in items:
                if labels_override is not None and (t.id, s.id) in labels_override:
                    labels = labels_override[(t.id, s.id)]
                entries.append((f"{t.id}/{s.id}", str(manifest.resolve(path)), frozenset(labels)))
        if not entries:
            raise WeakmirError(f"manifest has no stems in splits {list(splits)}; choose other splits")
        cache_file = None
        spans: dict = {}
        if cache and trim_silence:
            cache_file = manifest.root / ".weakmir-cache" / "silence.json"
            if cache_file.exists():
                try:
                    spans = json.loads(cache_file.read_text())
                except json.JSONDecodeError:
                    spans = {}
        from tqdm import tqdm

        stems, dirty = [], False
        for key, path, labels in tqdm(entries, desc="silence", disable=not progress, leave=False):
            sr, _, frames = audio_info(path)
            st = os.stat(path)
            ck = hashlib.sha1(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
            if not trim_silence:
                iv = np.array([[0, frames]], np.int64)
            elif ck in spans:
                iv = np.array(spans[ck], np.int64).reshape(-1, 2)
            else:
                x, _ = load(path)
                _, iv = remove_silence(x)
                spans[ck] = iv.tolist()
                dirty = True
            stems.append(PoolStem(key, path, labels, sr, frames, iv))
        if cache_file is not None and dirty:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(spans))
            os.replace(tmp, cache_file)
        return cls(stems, sample_rate, channels, manifest_vocab(manifest))

    def segment(self, index: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
        """A random segment of the silence-trimmed stem, ``(channels, round(seconds * sample_rate))``.

        Stems shorter than the segment are looped.
        """
        s = self.stems[index]
        n_out = int(round(seconds * self.sample_rate))
        n_in = int(np.ceil(seconds * s.sample_rate)) + (8 if s.sample_rate != self.sample_rate else 0)
        lengths = s.intervals[:, 1] - s.intervals[:, 0]
        cum = np.concatenate([[0], np.cumsum(lengths)])
        total = int(cum[-1])
        start = int(rng.integers(0, max(total - n_in, 0) + 1))
        pieces, need, pos = [], n_in, start % total
        while need > 0:
            i = int(np.searchsorted(cum, pos, side="right") - 1)
            off = pos - cum[i]
            take = int(min(need, lengths[i] - off))
            pieces.append(self._read(s, int(s.intervals[i, 0] + off), take))
            need -= take
            pos = (pos + take) % total
        x = np.concatenate(pieces, axis=1)
        x = to_channels(x, self.channels, path=s.path)
        if s.sample_rate != self.sample_rate:
            x = resample(x, s.sample_rate, self.sample_rate)
        if x.shape[1] < n_out:
            x = np.pad(x, ((0, 0), (0, n_out - x.shape[1])))
        return x[:, :n_out]


def manifest_vocab(manifest: Manifest):
    from .labels import vocabulary

    return vocabulary(manifest.stem_vocabulary)


class _Mixer:
    def __init__(self, pool: StemPool, seconds: float, effects: EffectsConfig | None, normalize_lufs: float | None):
        self.pool, self.seconds, self.effects, self.normalize_lufs = pool, seconds, effects, normalize_lufs
        self.vocab = pool.vocab

    def _process(self, idx: int, rng: np.random.Generator) -> tuple[np.ndarray, dict | None]:
        x = self.pool.segment(idx, self.seconds, rng)
        if self.effects is None:
            return x, None
        params = sample_params(rng, self.effects)
        return apply_chain(x, self.pool.sample_rate, params, backend=self.effects.backend), params

    def _normalize(self, mixture: np.ndarray, *others):
        """Scale mixture and targets together so the mixture is at ``normalize_lufs``."""
        if self.normalize_lufs is None:
            return (mixture, *others)
        try:
            lufs = integrated_loudness(mixture, self.pool.sample_rate)
        except WeakmirError:
            lufs = float("-inf")
        if not np.isfinite(lufs):
            return (mixture, *others)
        g = np.float32(10 ** ((self.normalize_lufs - lufs) / 20))
        return (mixture * g, *[o * g for o in others])


class RandomMixer(_Mixer):
    """Self-refine §3.1.1 random mixing for multi-label classification.

    Args:
        chance: probability that each class is drawn.
        single_only: draw only stems labelled with exactly that one class
            (Ψ_refined trains on single-labelled stems, §4.2).
    """

    def __init__(self, pool: StemPool, seconds: float = 2.97, chance: float = 0.5,
                 effects: EffectsConfig | None = EffectsConfig(), single_only: bool = False,
                 normalize_lufs: float | None = None, return_sources: bool = False):
        super().__init__(pool, seconds, effects, normalize_lufs)
        self.chance, self.single_only, self.return_sources = chance, single_only, return_sources
        self.pools = pool.single if single_only else pool.by_label
        self.classes = [v for v in self.vocab if self.pools[v]]
        if not self.classes:
            raise WeakmirError("no stems to draw from for any class; check labels and splits")

    def sample(self, rng: np.random.Generator) -> dict:
        """One example: ``mixture (C, T)``, ``labels (K,)``, ``keys`` (the picked stems, ``"+"``-joined).

        With ``return_sources=True`` also ``sources (n, C, T)`` (n varies, so
        such examples do not batch with the default collate).
        """
        drawn = [v for v in self.classes if rng.random() < self.chance]
        if not drawn:
            drawn = [self.classes[int(rng.integers(len(self.classes)))]]
        chosen = []
        for v in drawn:
            i = int(rng.choice(self.pools[v]))
            if i not in chosen:
                chosen.append(i)
        audio, labels = [], set()
        for i in chosen:
            x, _ = self._process(i, rng)
            audio.append(x)
            labels |= self.pool.stems[i].labels
        sources = np.stack(audio)
        mixture = sources.sum(axis=0)
        mixture, sources = self._normalize(mixture, sources)
        y = np.array([1.0 if v in labels else 0.0 for v in self.vocab], np.float32)
        ex = {"mixture": mixture.astype(np.float32), "labels": y,
              "keys": "+".join(self.pool.stems[i].key for i in chosen)}
        if self.return_sources:
            ex["sources"] = sources.astype(np.float32)
        return ex


class SeparationMixer(_Mixer):
    """Self-refine §3.2 mixing for separation with multi-labelled sources.

    Every class of the vocabulary is covered: either by the one multi-labelled
    stem (picked with probability ``p_multi``) or by a single-labelled stem; a
    class with no single-labelled stem in the pool (``self.absent``) is left
    out of the mixture unless the multi-labelled stem carries it, and its
    target is silence.
    """

    def __init__(self, pool: StemPool, seconds: float = 3.0, p_multi: float = 0.4,
                 effects: EffectsConfig | None = EffectsConfig(), normalize_lufs: float | None = -14.0):
        super().__init__(pool, seconds, effects, normalize_lufs)
        self.p_multi = p_multi
        self.absent = [v for v in self.vocab if not pool.single[v]]
        if len(self.absent) == len(self.vocab):
            raise WeakmirError("no single-labelled stems at all; the separation mixer needs at least one class")

    def sample(self, rng: np.random.Generator) -> dict:
        """One example.

        Returns:
            ``mixture (C, T)``; ``targets (K, C, T)``, one per group, zero-padded
            from G <= K groups to K so examples batch; ``assignment (K, K)``
            (row g: the classes whose estimates sum into group g; padded rows
            are zero, so they add nothing to an L1/L2 loss); ``group_mask (K,)``
            (1 for real groups); ``keys`` (the picked stems, ``"+"``-joined).
        """
        chosen, covered = [], set()
        if self.pool.multi and rng.random() < self.p_multi:
            i = int(rng.choice(self.pool.multi))
            chosen.append(i)
            covered |= self.pool.stems[i].labels
        for v in self.vocab:
            if v not in covered and self.pool.single[v]:  # a class with no single-labelled stem stays out (silent target)
                chosen.append(int(rng.choice(self.pool.single[v])))
                covered.add(v)
        sources = np.stack([self._process(i, rng)[0] for i in chosen])
        labels = [sorted(self.pool.stems[i].labels) for i in chosen]
        membership, assignment = separation_groups(labels, self.vocab)
        targets = group_targets(sources, membership)
        mixture = sources.sum(axis=0)
        mixture, targets = self._normalize(mixture, targets)
        K, G = len(self.vocab), len(assignment)
        pad_t = np.zeros((K, *targets.shape[1:]), np.float32)
        pad_t[:G] = targets
        pad_a = np.zeros((K, K), np.float32)
        pad_a[:G] = assignment
        mask = (np.arange(K) < G).astype(np.float32)
        return {"mixture": mixture.astype(np.float32), "targets": pad_t, "assignment": pad_a, "group_mask": mask,
                "keys": "+".join(self.pool.stems[i].key for i in chosen)}


class MixDataset(torch.utils.data.Dataset):
    """``length`` examples per epoch from a mixer; example ``i`` is seeded by ``(seed, epoch, i)``."""

    def __init__(self, mixer, length: int, seed: int = 0):
        self.mixer, self.length, self.seed, self.epoch = mixer, int(length), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.length:
            raise IndexError(i)
        ex = self.mixer.sample(np.random.default_rng([self.seed, self.epoch, int(i)]))
        return {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in ex.items()}


__all__ = ["PoolStem", "StemPool", "RandomMixer", "SeparationMixer", "MixDataset"]
