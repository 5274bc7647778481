"""Training targets the four methods need.

* :func:`multi_hot` — labels to multi-hot values + observation mask, ``(K,)``.
* :func:`separation_groups` / :func:`group_estimates` — separation targets for
  multi-labelled sources (self-refine_koo2023 §3.2): the estimates of the
  classes a source is labelled with are summed before the loss.
* :func:`piano_roll` — per-instrument piano roll, 88 notes (A0..C8) x frames.
* :func:`harmonic_mask` — the within-frame activity of score-supervised_hung2021
  eq. 7: bins of the fundamental and ``n_harmonics`` overtones of every active
  note, ±``width`` bins.
* :func:`pitch_target` — 360-bin, 20-cent pitch vectors of CREPE (Kim et al.
  2018), as majl_wei2024 §3 uses, with Gaussian blur (σ = 25 cents) and
  :func:`pitch_confidence` (majl_wei2024 eq. 4); :func:`pitch_decode` goes back to Hz.

Conventions: frame ``k`` is centred at ``k * hop_length / sample_rate`` s (as
:mod:`weakmir.audio.spectral`); MIDI 21 is row 0 of a piano roll.
"""

from __future__ import annotations

import numpy as np
import torch

from .labels import LabelSet

PIANO_LOW, PIANO_KEYS = 21, 88
CREPE_BINS = 360
CREPE_CENTS = np.linspace(0, 7180, CREPE_BINS) + 1997.3794084376191  # cents above 10 Hz: 31.7 Hz .. 2006 Hz


def multi_hot(labels, vocab) -> tuple[np.ndarray, np.ndarray]:
    """Values and mask, each ``(len(vocab),)`` float32.

    ``labels`` is a :class:`LabelSet` (unknown labels get mask 0) or an iterable
    of present labels (fully observed: everything else absent, mask 1).
    """
    if not isinstance(labels, LabelSet):
        labels = LabelSet.complete(labels, vocab)
    labels.validate(vocab)
    return labels.vector(vocab)


# -- separation with multi-labelled sources (§3.2) ------------------------------

def separation_groups(source_labels: list, vocab) -> tuple[np.ndarray, np.ndarray]:
    """Group sources whose label sets overlap, and give uncovered classes their own group.

    Args:
        source_labels: one collection of labels per source.

    Returns:
        ``membership (G, S)`` (which sources sum into group g's target) and
        ``assignment (G, K)`` (which class estimates sum into group g's
        estimate); both float32 0/1. Groups are ordered by their first class.
    """
    K, S = len(vocab), len(source_labels)
    idx = {v: i for i, v in enumerate(vocab)}
    parent = list(range(K))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for labs in source_labels:
        ks = [idx[lab] for lab in labs]
        if not ks:
            raise ValueError("a source has no label; every source needs at least one")
        for k in ks[1:]:
            parent[find(k)] = find(ks[0])
    roots = sorted({find(k) for k in range(K)}, key=lambda r: min(k for k in range(K) if find(k) == r))
    G = len(roots)
    assignment = np.zeros((G, K), np.float32)
    membership = np.zeros((G, S), np.float32)
    for g, r in enumerate(roots):
        for k in range(K):
            if find(k) == r:
                assignment[g, k] = 1.0
        for s, labs in enumerate(source_labels):
            if find(idx[next(iter(labs))]) == r:
                membership[g, s] = 1.0
    return membership, assignment


def group_targets(sources: np.ndarray, membership: np.ndarray) -> np.ndarray:
    """Sum the sources of each group.

    Shape: sources ``(S, C, T)``, membership ``(G, S)`` -> ``(G, C, T)``.
    """
    return np.einsum("gs,sct->gct", membership, sources).astype(np.float32)


def group_estimates(estimates: torch.Tensor, assignment: torch.Tensor) -> torch.Tensor:
    """Sum the class estimates of each group (§3.2), differentiably.

    Shape: estimates ``(B, K, C, T)``, assignment ``(B, G, K)`` or ``(G, K)``
    -> ``(B, G, C, T)``.
    """
    if estimates.dim() != 4:
        raise ValueError(f"estimates must be (batch, classes, channels, time), got {tuple(estimates.shape)}")
    if assignment.dim() == 2:
        assignment = assignment.unsqueeze(0).expand(estimates.shape[0], -1, -1)
    if assignment.shape[0] != estimates.shape[0] or assignment.shape[-1] != estimates.shape[1]:
        raise ValueError(f"assignment {tuple(assignment.shape)} does not match estimates {tuple(estimates.shape)}")
    return torch.einsum("bgk,bkct->bgct", assignment.to(estimates.dtype), estimates)


# -- piano rolls and harmonic masks -------------------------------------------------

def piano_roll(notes, n_frames: int, hop_length: int, sample_rate: int) -> np.ndarray:
    """Binary piano roll of one instrument.

    A note covers frames ``round(onset * fps)`` to ``round(offset * fps)``
    (at least one frame); notes outside A0..C8 are dropped.

    Shape: notes ``(n, 4)`` (onset s, offset s, MIDI pitch, velocity) -> ``(88, n_frames)`` float32.
    """
    fps = sample_rate / float(hop_length)
    roll = np.zeros((PIANO_KEYS, n_frames), np.float32)
    for on, off, p, _ in np.asarray(notes, dtype=float).reshape(-1, 4):
        row = int(round(p)) - PIANO_LOW
        if not 0 <= row < PIANO_KEYS:
            continue
        k0 = int(round(on * fps))
        k1 = max(k0 + 1, int(round(off * fps)))
        roll[row, max(k0, 0):min(k1, n_frames)] = 1.0
    return roll


def harmonic_mask(
    roll: np.ndarray,
    sample_rate: int,
    n_fft: int,
    n_harmonics: int = 10,
    tuning_hz: float = 440.0,
    width: int = 1,
) -> np.ndarray:
    """Expected-active TF bins from a piano roll (score-supervised_hung2021 eq. 7).

    For an active note ``n``: ``f0 = tuning_hz * 2**((n - 69) / 12)``; its
    partials ``f_l = f0 * (l + 1)`` for ``l = 0..n_harmonics`` (the paper writes
    ``l = 1..L`` for the overtones; we also mark the fundamental, ``l = 0``),
    below Nyquist, mark bins ``round(f_l * n_fft / sample_rate) ± width``.

    Shape: roll ``(..., 88, frames)`` -> ``(..., n_fft // 2 + 1, frames)`` bool.
    """
    roll = np.asarray(roll)
    F = n_fft // 2 + 1
    # key -> bins table (88, F)
    table = np.zeros((PIANO_KEYS, F), bool)
    for row in range(PIANO_KEYS):
        f0 = tuning_hz * 2.0 ** ((row + PIANO_LOW - 69) / 12.0)
        for l in range(n_harmonics + 1):  # noqa: E741
            f = f0 * (l + 1)
            if f >= sample_rate / 2:
                break
            b = int(round(f * n_fft / sample_rate))
            table[row, max(b - width, 0):min(b + width + 1, F)] = True
    active = roll.astype(np.float32) > 0
    out = np.einsum("kf,...kt->...ft", table.astype(np.float32), active.astype(np.float32)) > 0
    return out


# -- pitch vectors (CREPE bins) --------------------------------------------------------

def hz_to_cents(f_hz) -> np.ndarray:
    """Cents above 10 Hz (CREPE's reference); nan for f <= 0."""
    f = np.asarray(f_hz, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(f > 0, 1200.0 * np.log2(f / 10.0), np.nan)


def pitch_target(f0_hz, voicing=None, sigma_cents: float | None = 25.0) -> tuple[np.ndarray, np.ndarray]:
    """CREPE pitch vectors from an f0 track.

    Voiced frames get a Gaussian over the 360 bins centred at the true pitch
    (``sigma_cents=None``: one-hot at the nearest bin); unvoiced frames are all
    zero. The confidence of true labels is 1 (majl_wei2024 eq. 5).

    Shape: f0 ``(T,)`` Hz, voicing ``(T,)`` (default ``f0 > 0``) -> targets
    ``(T, 360)`` float32 and confidence ``(T,)`` float32.
    """
    f0 = np.asarray(f0_hz, dtype=float)
    voiced = (f0 > 0) if voicing is None else (np.asarray(voicing) > 0) & (f0 > 0)
    cents = hz_to_cents(np.where(voiced, f0, 1.0))
    T = len(f0)
    out = np.zeros((T, CREPE_BINS), np.float32)
    if sigma_cents is None:
        k = np.clip(np.rint((cents - CREPE_CENTS[0]) / 20.0).astype(int), 0, CREPE_BINS - 1)
        out[np.flatnonzero(voiced), k[voiced]] = 1.0
    else:
        g = np.exp(-((CREPE_CENTS[None, :] - cents[:, None]) ** 2) / (2 * sigma_cents**2))
        out[voiced] = g[voiced]
    return out, np.ones(T, np.float32)


def pitch_confidence(probs) -> np.ndarray:
    """majl_wei2024 eq. 4: ``max(y)`` when ``max(y) >= 0.5`` else ``1 - max(y)``.

    Shape: ``(..., 360)`` -> ``(...)``.
    """
    m = np.asarray(probs).max(axis=-1)
    return np.where(m >= 0.5, m, 1.0 - m).astype(np.float32)


def pitch_decode(probs, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """f0 (Hz) and voicing from pitch vectors: CREPE's weighted average of ±4 bins around the argmax.

    Shape: ``(T, 360)`` -> f0 ``(T,)`` Hz (0 when unvoiced), voicing ``(T,)`` bool.
    """
    p = np.asarray(probs, dtype=float)
    k = p.argmax(axis=-1)
    T = p.shape[0]
    lo = np.clip(k - 4, 0, CREPE_BINS)
    f0 = np.zeros(T)
    for t in range(T):
        sl = slice(lo[t], min(k[t] + 5, CREPE_BINS))
        w = p[t, sl]
        f0[t] = 10.0 * 2 ** ((w @ CREPE_CENTS[sl]) / max(w.sum(), 1e-12) / 1200.0)
    voiced = p.max(axis=-1) >= threshold
    return np.where(voiced, f0, 0.0), voiced
