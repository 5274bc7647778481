"""Label corruption like MDX23's label-noise data, and missing tags like OpenMIC's.

MDX23 label noise (self-refine_koo2023 §4.1) comes in three kinds, each here at
its own rate (the fraction of a track's stems it hits):

* ``bleed``: another source of the same track leaks into the stem at
  −20…−6 dB relative to the stem's RMS; label unchanged; true labels become
  both sources.
* ``wrong_label``: the stem is labelled as another stem class; audio unchanged.
* ``merge``: two sources with different labels are summed under one of the two
  labels; the other stem is hidden (it is no longer in the observed data).

True labels are never altered. The plan (which stem gets what) is drawn from
metadata only, so its rates are testable without audio; :func:`apply_plan`
then makes the noisy audio.

Missing tags: every (clip, class) entry of the fully observed tag set is kept
with probability ``1 - missing`` and otherwise becomes unknown, independently
(missing completely at random). OpenMIC-2018's missingness is not random (its
annotators were asked about a subset of classes per clip); MCAR is the simple
first model and is documented as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .labels import STEMS4, LabelSet


@dataclass(frozen=True)
class NoiseRates:
    """Per-stem probability of each corruption kind (their sum must be <= 1)."""

    bleed: float = 0.0
    wrong_label: float = 0.0
    merge: float = 0.0
    bleed_db: tuple[float, float] = (-20.0, -6.0)

    def __post_init__(self):
        for k in ("bleed", "wrong_label", "merge"):
            v = getattr(self, k)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"--{k.replace('_', '-')} rate {v} is outside [0, 1]")
        if self.total > 1.0 + 1e-9:
            raise ValueError(f"label-noise rates sum to {self.total:.2f} > 1; lower --bleed/--wrong-label/--merge")

    @property
    def total(self) -> float:
        return self.bleed + self.wrong_label + self.merge

    @classmethod
    def split_evenly(cls, noise: float) -> "NoiseRates":
        """``noise`` spread evenly over the three kinds."""
        return cls(noise / 3.0, noise / 3.0, noise / 3.0)


def plan_corruption(labels: list[str], rates: NoiseRates, rng: np.random.Generator, vocab=STEMS4) -> list[dict | None]:
    """Decide the corruption of each stem of one track.

    Args:
        labels: the true (single) stem label of each stem, in stem order.

    Returns:
        One entry per stem: None, or a dict ``{"kind": ..., ...}``:
        ``bleed`` has ``source`` (stem index) and ``gain_db``; ``wrong_label``
        has ``label``; ``merge`` has ``source`` (the absorbed stem index); the
        absorbed stem gets ``{"kind": "absorbed", "into": index}``.
    """
    n = len(labels)
    kinds = []
    edges = np.cumsum([rates.merge, rates.wrong_label, rates.bleed])
    for _ in range(n):
        u = rng.random()
        kinds.append("merge" if u < edges[0] else "wrong_label" if u < edges[1] else "bleed" if u < edges[2] else None)
    plan: list[dict | None] = [None] * n
    order = rng.permutation(n)
    taken = set()
    for i in order:
        k = kinds[i]
        if k is None or i in taken:
            continue
        # prefer a partner with another label (the label-level noise the paper
        # cares about); fall back to any other stem (audio-level noise only)
        others = [j for j in range(n) if j != i and labels[j] != labels[i]] or [j for j in range(n) if j != i]
        if k == "merge":
            free = [j for j in others if kinds[j] is None and j not in taken]
            if not free:
                free = [j for j in range(n) if j != i and kinds[j] is None and j not in taken]
            if not free:
                continue
            j = int(rng.choice(free))
            plan[i] = {"kind": "merge", "source": j}
            plan[j] = {"kind": "absorbed", "into": int(i)}
            taken.update((i, j))
        elif k == "wrong_label":
            choices = [v for v in vocab if v != labels[i]]
            plan[i] = {"kind": "wrong_label", "label": str(rng.choice(choices))}
            taken.add(i)
        else:
            if not others:
                continue
            j = int(rng.choice(others))
            plan[i] = {"kind": "bleed", "source": j, "gain_db": float(rng.uniform(*rates.bleed_db))}
            taken.add(i)
    return plan


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def apply_plan(audio: list[np.ndarray], plan: list[dict | None]) -> list[np.ndarray | None]:
    """The noisy audio of each stem under ``plan`` (None where audio is unchanged).

    Shape: each ``audio[i]`` is ``(channels, time)``; outputs likewise.
    Bleed gain is relative RMS: ``rms(gain * other) = 10**(gain_db/20) * rms(stem)``.
    """
    out: list[np.ndarray | None] = [None] * len(audio)
    for i, p in enumerate(plan):
        if p is None:
            continue
        if p["kind"] == "merge":
            out[i] = audio[i] + audio[p["source"]]
        elif p["kind"] == "bleed":
            src = audio[p["source"]]
            r_src, r_own = _rms(src), _rms(audio[i])
            g = 0.0 if r_src == 0 else 10 ** (p["gain_db"] / 20.0) * r_own / r_src
            out[i] = audio[i] + g * src
    return out


def drop_tags(true_present, vocab, missing: float, rng: np.random.Generator) -> LabelSet:
    """Observed tags: each (class) entry of the complete label set kept with prob ``1 - missing``."""
    if not 0.0 <= missing <= 1.0:
        raise ValueError(f"--missing rate {missing} is outside [0, 1]")
    full = LabelSet.complete(true_present, vocab)
    keep = rng.random(len(vocab)) >= missing
    present = {v for v, k in zip(vocab, keep) if k and v in full.present}
    absent = {v for v, k in zip(vocab, keep) if k and v in full.absent}
    return LabelSet(frozenset(present), frozenset(absent))
