"""Score-supervised separation (Hung, Wichern, Le Roux — ICASSP 2021): losses and step functions.

A transcriptor is trained on mixtures and their scores (step 1), then used as a
frozen critic for a mask separator that never sees an isolated source (step 2),
then both are fine-tuned together with two adversarial terms (step 3).

Notation (shapes): ``X (B, F, T)`` mixture magnitude; ``Y (B, I, 88, T)``
score as a piano roll per instrument; ``p (B, I, 88, T)`` transcriptor
probabilities; ``S (B, I, F, T)`` separated magnitudes Ŝ_i = M_i ⊙ X;
``P (B, I, I, 88, T)`` transcriptions of every separated source
(``P[:, i]`` = p(Ŝ_i)); ``active (B, I)`` clip-level activity; ``H (B, I, F, T)``
the harmonic activity of eq. 7 (:func:`weakmir.data.targets.harmonic_mask`).

Reductions: the paper's losses are sums over notes / bins and frames; here
every loss sums over the note, instrument and frequency axes as written and
averages over batch and frames, so a loss does not grow with clip length or
batch size while the balance between the terms (and so the paper's weights
α1 = 0.03, β1 = 0.1, α2 = 1, β2 = 0.1, α3 = 0.2, β3 = 0.05) stays as in the
equations.

Class weights (§3.2, after Pishdadian et al.): instrument ``i`` with
frame-activity rate ``r_i`` in the training set weighs ``w_i ∝ 1 / r_i``,
normalised to mean 1 over instruments, on every transcription term of that
instrument (the paper gives the rates — piano 0.41, guitar 0.14, bass 0.67 —
not the formula; inverse frequency is the usual reading).
"""

from __future__ import annotations

import torch

_EPS = 1e-7


def _check(name: str, **tensors) -> None:
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    first = next(iter(shapes.values()))
    if any(s != first for s in shapes.values()):
        raise ValueError(f"{name}: shapes disagree: {shapes}")


def bce(y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Elementwise H(y, p) = −y log p − (1 − y) log(1 − p) (§2.1), with p clamped away from 0 and 1."""
    p = p.clamp(_EPS, 1 - _EPS)
    return -(y * torch.log(p) + (1 - y) * torch.log1p(-p))


def class_weights(activity_rates) -> torch.Tensor:
    """``w_i = (1 / r_i) / mean_j(1 / r_j)``: ``(I,)`` frame-activity rates -> ``(I,)`` weights."""
    r = torch.as_tensor(activity_rates, dtype=torch.float32)
    if (r <= 0).any() or (r > 1).any():
        raise ValueError(f"activity rates must be in (0, 1], got {r.tolist()}")
    w = 1.0 / r
    return w / w.mean()


def activity_rates(rolls) -> torch.Tensor:
    """Fraction of frames in which each instrument plays: rolls ``(B, I, 88, T)`` -> ``(I,)``."""
    active = rolls.amax(dim=2)  # (B, I, T)
    return active.float().mean(dim=(0, 2))


def _weighted(h: torch.Tensor, weights, axis: int) -> torch.Tensor:
    if weights is None:
        return h
    shape = [1] * h.dim()
    shape[axis] = -1
    return h * torch.as_tensor(weights, dtype=h.dtype, device=h.device).view(shape)


def score_loss(p: torch.Tensor, Y: torch.Tensor, weights=None) -> torch.Tensor:
    """Eq. 1: L_score = Σ_{i,n,t} H(Y_{i,n,t}, p_{i,n,t}). ``p, Y (B, I, 88, T)`` -> scalar."""
    _check("score_loss", p=p, Y=Y)
    return _weighted(bce(Y, p), weights, 1).sum(dim=(1, 2)).mean()


def pitch_loss(p: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Eq. 2: L_pitch = Σ_{n,t} H(max_i Y, max_i p) (multi-pitch). ``(B, I, 88, T)`` -> scalar."""
    _check("pitch_loss", p=p, Y=Y)
    return bce(Y.amax(dim=1), p.amax(dim=1)).sum(dim=1).mean()


def inst_loss(p: torch.Tensor, Y: torch.Tensor, weights=None) -> torch.Tensor:
    """Eq. 3: L_inst = Σ_{i,t} H(max_n Y, max_n p) (instrument activity). ``(B, I, 88, T)`` -> scalar."""
    _check("inst_loss", p=p, Y=Y)
    return _weighted(bce(Y.amax(dim=2), p.amax(dim=2)), weights, 1).sum(dim=1).mean()


def transcription_loss(p, Y, weights=None, alpha1: float = 0.03, beta1: float = 0.1) -> torch.Tensor:
    """Eq. 4: L_TL = L_score + α1 L_inst + β1 L_pitch."""
    return score_loss(p, Y, weights) + alpha1 * inst_loss(p, Y, weights) + beta1 * pitch_loss(p, Y)


def own_score(Y: torch.Tensor) -> torch.Tensor:
    """``Y^(i)`` for every i at once: ``(B, I, 88, T) -> (B, I, I, 88, T)``, ``[:, i, j] = δ_ij Y_j``."""
    eye = torch.eye(Y.shape[1], dtype=Y.dtype, device=Y.device)
    return eye[None, :, :, None, None] * Y[:, None]


def separated_score_loss(P: torch.Tensor, Y: torch.Tensor, weights=None) -> torch.Tensor:
    """Eq. 5, summed over sources (the first term of eq. 8): Σ_i L_score(Ŝ_i, Y^(i)).

    ``P (B, I, I, 88, T)`` transcriptions of the separated sources, ``Y (B, I, 88, T)`` -> scalar.
    """
    target = own_score(Y)
    _check("separated_score_loss", P=P, target=target)
    return _weighted(bce(target, P), weights, 2).sum(dim=(1, 2, 3)).mean()


def clip_mixture_loss(S: torch.Tensor, X: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Eq. 6: Σ_{f,t} |X − Σ_{i∈A} Ŝ_i| + Σ_{f,t} Σ_{i∉A} |Ŝ_i|.

    ``S (B, I, F, T)``, ``X (B, F, T)``, ``active (B, I)`` (clip-level) -> scalar.
    """
    return _mixture_loss(S, X, active[:, :, None, None].expand_as(S))


def harmonic_mixture_loss(S: torch.Tensor, X: torch.Tensor, harmonic: torch.Tensor) -> torch.Tensor:
    """Eq. 7: as eq. 6 with the per-bin active set A_{f,t} from the score's harmonics (±1 bin).

    ``S (B, I, F, T)``, ``X (B, F, T)``, ``harmonic (B, I, F, T)`` bool -> scalar.
    """
    return _mixture_loss(S, X, harmonic)


def _mixture_loss(S, X, active):
    if S.dim() != 4 or X.shape != (S.shape[0], *S.shape[2:]) or active.shape != S.shape:
        raise ValueError(f"mixture loss: S {tuple(S.shape)}, X {tuple(X.shape)}, activity {tuple(active.shape)} "
                         "must be (B, I, F, T), (B, F, T), (B, I, F, T)")
    a = active.to(S.dtype)
    inside = (X - (S * a).sum(dim=1)).abs()
    outside = (S * (1 - a)).abs().sum(dim=1)
    return (inside + outside).sum(dim=1).mean()


def separator_loss(P, Y, S, X, active, harmonic=None, weights=None, alpha2: float = 1.0,
                   beta2: float = 0.1) -> torch.Tensor:
    """Eq. 8: L_sep = Σ_i L_score(Ŝ_i, Y^(i)) + α2 L_c-mix + β2 L_h-mix (a zero weight drops a term)."""
    loss = separated_score_loss(P, Y, weights)
    if alpha2:
        loss = loss + alpha2 * clip_mixture_loss(S, X, active)
    if beta2:
        if harmonic is None:
            raise ValueError("separator_loss: beta2 > 0 needs the harmonic activity (eq. 7)")
        loss = loss + beta2 * harmonic_mixture_loss(S, X, harmonic)
    return loss


def remix(S: torch.Tensor, Y: torch.Tensor, generator: torch.Generator | None = None):
    """§2.3 / Fig. 2: for each instrument i take Ŝ_{a_i, i} from another example a_i ≠ a and sum.

    ``S (B, I, F, T)``, ``Y (B, I, 88, T)`` -> remixed ``X̃ (B, F, T)`` and labels ``Ỹ (B, I, 88, T)``.
    Needs ``B >= 2``.
    """
    B, I = S.shape[:2]
    if B < 2:
        raise ValueError("remix needs at least two examples in a batch")
    shift = torch.randint(1, B, (I,), generator=generator)  # a_i = (a + shift_i) mod B, never a
    idx = (torch.arange(B)[:, None] + shift[None]) % B  # (B, I)
    inst = torch.arange(I)[None].expand(B, I)
    S_mix, Y_mix = S[idx, inst], Y[idx, inst]  # (B, I, F, T), (B, I, 88, T)
    return S_mix.sum(dim=1), Y_mix


def adversarial_mixture_loss(p_remix: torch.Tensor, Y_remix: torch.Tensor, weights=None) -> torch.Tensor:
    """Eq. 9: L_AML(X̃, Ỹ) = −L_score(X̃, Ỹ) — the transcriptor is rewarded for NOT transcribing remixes."""
    return -score_loss(p_remix, Y_remix, weights)


def other_score(Y: torch.Tensor) -> torch.Tensor:
    """The complement ``Y − Y^(i)`` for every i: ``(B, I, 88, T) -> (B, I, I, 88, T)``."""
    return Y[:, None].expand(-1, Y.shape[1], -1, -1, -1) - own_score(Y)


def adversarial_transcription_loss(P: torch.Tensor, Y: torch.Tensor, weights=None) -> torch.Tensor:
    """Eq. 10, summed over sources: on Ŝ_i the target instrument should read silent (H(0, p_i)) and
    the others their true scores (H(Y_j, p_j)). ``P (B, I, I, 88, T)``, ``Y (B, I, 88, T)`` -> scalar."""
    target = other_score(Y)
    _check("adversarial_transcription_loss", P=P, target=target)
    return _weighted(bce(target, P), weights, 2).sum(dim=(1, 2, 3)).mean()


def transcriptor_step3_loss(p, Y, p_remix=None, Y_remix=None, P=None, weights=None, alpha1: float = 0.03,
                            beta1: float = 0.1, alpha3: float = 0.2, beta3: float = 0.05) -> torch.Tensor:
    """Eq. 11: L_TL-3 = L_TL + α3 L_AML + β3 L_ATL (a zero weight drops a term)."""
    loss = transcription_loss(p, Y, weights, alpha1, beta1)
    if alpha3:
        loss = loss + alpha3 * adversarial_mixture_loss(p_remix, Y_remix, weights)
    if beta3:
        loss = loss + beta3 * adversarial_transcription_loss(P, Y, weights)
    return loss


__all__ = [
    "bce", "class_weights", "activity_rates", "score_loss", "pitch_loss", "inst_loss", "transcription_loss",
    "own_score", "separated_score_loss", "clip_mixture_loss", "harmonic_mixture_loss", "separator_loss", "remix",
    "adversarial_mixture_loss", "other_score", "adversarial_transcription_loss", "transcriptor_step3_loss",
]
