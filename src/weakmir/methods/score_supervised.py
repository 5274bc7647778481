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

Magnitude scale (our choice; the paper does not give its STFT scaling): the
mixture losses (eq. 6, 7) read ``|X|`` and ``Ŝ_i`` multiplied by the model's
``magnitude_scale`` = √(2 / n_fft), the orthonormal STFT's scale. With the raw
sqrt-Hann STFT (n_fft 1024) the mixture terms come out ~20× the score term at
α2 = 1, the separator ignores its critic, and on the slakh corpus (before its
rests were added) piano and guitar end *below* the input-mixture SI-SDR (−6.6 / −6.6 dB vs −5.3 / −7.1
after 600 separator steps); at the orthonormal scale the same run reaches
−2.1 / −2.9 dB, with the paper's weights unchanged.

Mixture level: eq. 6 is clip-level; :func:`frame_mixture_loss` is the
frame-level loss of [16] (Pishdadian et al.), the same terms with each
frame's active set. The paper used the clip level because activity was
steady over its 4-s clips and found the frame level similar; ``ScoreConfig``
picks one (``mixture_level``) for step 2 and the classifier baseline alike
(the experiment's quick preset uses the frame level: its parts rest inside
clips — :mod:`weakmir.experiments.score_supervised`).

Class weights (§3.2, after Pishdadian et al.): instrument ``i`` with
frame-activity rate ``r_i`` in the training set weighs ``w_i ∝ 1 / r_i``,
normalised to mean 1 over instruments, on every transcription term of that
instrument (the paper gives the rates — piano 0.41, guitar 0.14, bass 0.67 —
not the formula; inverse frequency is the usual reading).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import partial

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
    return _per_source_score("separated_score_loss", P, own_score(Y), weights)


def _per_source_score(name: str, P, target, weights) -> torch.Tensor:
    """Σ_i L_score(Ŝ_i, target_i): ``P, target (B, I, I, 88, T)`` -> scalar."""
    _check(name, P=P, target=target)
    return _weighted(bce(target, P), weights, 2).sum(dim=(1, 2, 3)).mean()


def clip_mixture_loss(S: torch.Tensor, X: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Eq. 6: Σ_{f,t} |X − Σ_{i∈A} Ŝ_i| + Σ_{f,t} Σ_{i∉A} |Ŝ_i|.

    ``S (B, I, F, T)``, ``X (B, F, T)``, ``active (B, I)`` (clip-level) -> scalar.
    """
    return _mixture_loss(S, X, active[:, :, None, None].expand_as(S))


def frame_mixture_loss(S: torch.Tensor, X: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """The frame-level mixture loss of [16] (Pishdadian et al.), which eq. 6 makes clip-level: as eq. 6
    with the active set A_t of each frame. ``S (B, I, F, T)``, ``X (B, F, T)``, ``active (B, I, T)`` -> scalar."""
    if active.dim() != 3 or active.shape != (*S.shape[:2], S.shape[-1]):
        raise ValueError(f"frame mixture loss: activity {tuple(active.shape)} must be (B, I, T) of S {tuple(S.shape)}")
    return _mixture_loss(S, X, active[:, :, None, :].expand_as(S))


def mixture_loss(S: torch.Tensor, X: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """The mixture term of eq. 8 and of the baseline: eq. 6 for clip-level ``active (B, I)``,
    :func:`frame_mixture_loss` for frame-level ``active (B, I, T)``."""
    return (clip_mixture_loss if active.dim() == 2 else frame_mixture_loss)(S, X, active)


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
    """Eq. 8: L_sep = Σ_i L_score(Ŝ_i, Y^(i)) + α2 L_c-mix + β2 L_h-mix (a zero weight drops a term).

    ``active``: clip-level ``(B, I)`` (eq. 6) or frame-level ``(B, I, T)`` (:func:`frame_mixture_loss`).
    """
    loss = separated_score_loss(P, Y, weights)
    if alpha2:
        loss = loss + alpha2 * mixture_loss(S, X, active)
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
    return _per_source_score("adversarial_transcription_loss", P, other_score(Y), weights)


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
    "own_score", "separated_score_loss", "clip_mixture_loss", "frame_mixture_loss", "mixture_loss",
    "harmonic_mixture_loss", "separator_loss", "remix", "adversarial_mixture_loss", "other_score",
    "adversarial_transcription_loss", "transcriptor_step3_loss",
]


# -- steps (one optimiser step's loss for weakmir.train.engine.fit) ------------------------------------

def harmonic_activity(roll: torch.Tensor, sample_rate: int, n_fft: int, n_harmonics: int,
                      tuning_hz: float) -> torch.Tensor:
    """Eq. 7's per-bin activity from a batch of piano rolls: ``(B, I, 88, T) -> (B, I, F, T)`` bool."""
    from ..data.targets import harmonic_mask

    return torch.from_numpy(harmonic_mask(roll.detach().cpu().numpy() > 0, sample_rate, n_fft, n_harmonics,
                                          tuning_hz)).to(roll.device)


def _frozen(module: torch.nn.Module, *args):
    """Call ``module`` with its parameters detached: gradients reach the input, never the module."""
    from torch.func import functional_call

    params = {k: v.detach() for k, v in module.named_parameters()}
    return functional_call(module, params, args)


def critic_transcriptions(transcriptor, S: torch.Tensor, frozen: bool = True) -> torch.Tensor:
    """p(Ŝ_i) for every separated source: ``S (B, I, F, T) -> P (B, I, I, 88, T)``."""
    B, I = S.shape[:2]
    flat = S.flatten(0, 1)
    p = _frozen(transcriptor, flat) if frozen else transcriptor(flat)
    return p.view(B, I, *p.shape[1:])


def _activity(batch, frame_level: bool) -> torch.Tensor:
    """The mixture loss's active sets: per frame from the score, ``(B, I, T)``, or per clip, ``(B, I)``."""
    return batch["roll"].amax(dim=2) > 0 if frame_level else batch["active"]


class SeparatorWithCritic(torch.nn.Module):
    """The separator and its critic (a transcriptor, or the baseline's classifier) as one module, so a
    single optimiser trains step 2 (critic frozen inside the step) and step 3 (both)."""

    def __init__(self, separator, critic):
        super().__init__()
        self.separator, self.critic = separator, critic


def transcriptor_step(model, batch, weights=None, alpha1: float = 0.03, beta1: float = 0.1):
    """Step 1: L_TL (eq. 4) of the transcriptor on mixtures. ``batch``: mixture ``(B, 1, T)``, roll ``(B, I, 88, N)``."""
    p = model(model.spectrogram(batch["mixture"]).abs())
    loss = transcription_loss(p, batch["roll"], weights, alpha1, beta1)
    return loss, {"loss": loss.detach()}


def separator_step(pair: SeparatorWithCritic, batch, weights=None, alpha2: float = 1.0, beta2: float = 0.1,
                   n_harmonics: int = 10, tuning_hz: float = 440.0, joint: bool = False, alpha1: float = 0.03,
                   beta1: float = 0.1, alpha3: float = 0.0, beta3: float = 0.0, generator=None,
                   frame_level: bool = False):
    """Step 2 (``joint=False``): L_sep (eq. 8) with the transcriptor as a frozen critic.

    Step 3 (``joint=True``): the same L_sep for the separator (the critic's parameters detached, so its
    gradient reaches only the separator) plus L_TL-3 (eq. 11) for the transcriptor on the mixtures, on
    remixes of the detached separated sources (AML, weight ``alpha3``) and on the detached separated
    sources (ATL, ``beta3``); the separator gets no gradient from L_TL-3. ``frame_level``: the mixture
    loss reads the score's activity per frame (:func:`frame_mixture_loss`) instead of per clip (eq. 6).
    """
    sep, tr = pair.separator, pair.critic
    X = sep.spectrogram(batch["mixture"]).abs()
    Y = batch["roll"]
    S = sep.separate_magnitude(X)
    P = critic_transcriptions(tr, S, frozen=True)
    H = harmonic_activity(Y, sep.sample_rate, sep.n_fft, n_harmonics, tuning_hz) if beta2 else None
    k = sep.magnitude_scale  # the mixture terms at the orthonormal scale (module docstring)
    loss = separator_loss(P, Y, S * k, X * k, _activity(batch, frame_level), H, weights, alpha2, beta2)
    logs = {"sep": loss.detach()}
    if joint:
        Sd = S.detach()
        p = tr(X)
        p_remix = Y_remix = P_t = None
        if alpha3:
            X_remix, Y_remix = remix(Sd, Y, generator)
            p_remix = tr(X_remix)
        if beta3:
            P_t = critic_transcriptions(tr, Sd, frozen=False)
        tl3 = transcriptor_step3_loss(p, Y, p_remix, Y_remix, P_t, weights, alpha1, beta1, alpha3, beta3)
        logs["tl3"] = tl3.detach()
        loss = loss + tl3
    return loss, logs


def supervised_step(model, batch):
    """Upper bound (§3.3): the same separator with L1 between Ŝ_i and the true source magnitudes."""
    X = model.spectrogram(batch["mixture"]).abs()
    B, I = batch["sources"].shape[:2]
    target = model.spectrogram(batch["sources"].flatten(0, 1)).abs().view(B, I, *X.shape[1:])
    loss = (model.separate_magnitude(X) - target).abs().sum(dim=2).mean()
    return loss, {"loss": loss.detach()}


def classifier_step(model, batch, weights=None):
    """Baseline critic [16]: frame-wise instrument activity of the mixture, BCE weighted per instrument."""
    c = model(model.spectrogram(batch["mixture"]).abs())  # (B, I, N)
    target = batch["roll"].amax(dim=2)
    loss = _weighted(bce(target, c), weights, 1).sum(dim=1).mean()
    return loss, {"loss": loss.detach()}


def classifier_separator_step(pair: SeparatorWithCritic, batch, weights=None, alpha2: float = 1.0,
                              frame_level: bool = False):
    """Baseline separator [16]: each Ŝ_i should read as instrument i active where the score says so and
    every other instrument silent (eq. 5 with activity instead of notes) + α2 × the mixture loss, clip-level
    (eq. 6) or, with ``frame_level``, [16]'s frame-level one (:func:`frame_mixture_loss`)."""
    sep, cl = pair.separator, pair.critic
    X = sep.spectrogram(batch["mixture"]).abs()
    S = sep.separate_magnitude(X)
    B, I = S.shape[:2]
    c = _frozen(cl, S.flatten(0, 1)).view(B, I, I, -1)  # (B, source, instrument, N)
    act = batch["roll"].amax(dim=2)  # (B, I, N)
    eye = torch.eye(I, dtype=act.dtype, device=act.device)[None, :, :, None]
    loss = _weighted(bce(eye * act[:, None], c), weights, 2).sum(dim=(1, 2)).mean()
    if alpha2:
        k = sep.magnitude_scale
        loss = loss + alpha2 * mixture_loss(S * k, X * k, _activity(batch, frame_level))
    return loss, {"loss": loss.detach()}


__all__ += ["harmonic_activity", "critic_transcriptions", "SeparatorWithCritic", "transcriptor_step", "separator_step",
            "supervised_step", "classifier_step", "classifier_separator_step"]


# -- the three-step recipe ----------------------------------------------------------------------------


@dataclass
class ScoreConfig:
    """Sizes and weights of one score-supervised run (defaults: the CPU size; the paper's weights)."""

    instruments: tuple | None = None  # None: every scored instrument of the manifest
    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 500
    model: dict = field(default_factory=lambda: {"channels": 64, "hidden": 128, "repeats": 3, "blocks": 8})
    seconds: float = 4.0
    batch_size: int = 8
    lr: float = 1e-3
    steps: tuple = (300, 300, 150)  # step 1, step 2, step 3
    alpha1: float = 0.03
    beta1: float = 0.1
    alpha2: float = 1.0
    beta2: float = 0.1
    # the mixture loss of step 2 and of the baseline: "clip" (eq. 6, the paper's) or "frame" ([16]'s)
    mixture_level: str = "clip"
    alpha3: float = 0.2
    beta3: float = 0.05
    n_harmonics: int = 10
    tuning_hz: float = 440.0
    class_weights: bool = True
    examples_per_epoch: int = 256
    splits: tuple = ("train",)
    seed: int = 0

    def __post_init__(self):
        if self.mixture_level not in ("clip", "frame"):
            raise ValueError(f"mixture_level must be 'clip' or 'frame', got {self.mixture_level!r}")


def data_weights(data, enabled: bool = True):
    """Frame-activity rates ``(I,)`` over every frame of the training tracks (``data``: a
    :class:`~weakmir.data.scores.ScoreClips`) and the class weights from them (``None`` when not ``enabled``)."""
    active, frames = torch.zeros(len(data.instruments)), 0
    for mix, _, notes in data.tracks:
        n = mix.shape[-1] // data.hop_length + 1
        active += activity_rates(torch.from_numpy(data.roll(notes, 0, n))[None]) * n
        frames += n
    rates = active / max(frames, 1)
    return rates, (class_weights(rates.clamp_min(1e-3)) if enabled else None)


def model_kwargs(config: ScoreConfig, instruments) -> dict:
    """Constructor arguments of the TCN models of ``config`` for ``instruments``."""
    return {"instruments": list(instruments), "sample_rate": config.sample_rate, "n_fft": config.n_fft,
            "hop_length": config.hop_length, **config.model}


def step1(config: ScoreConfig, weights):
    """Step 1's step function: L_TL (eq. 4) with ``config``'s α1, β1."""
    return partial(transcriptor_step, weights=weights, alpha1=config.alpha1, beta1=config.beta1)


def step2(config: ScoreConfig, weights, c_mix: bool = True, h_mix: bool = True):
    """Step 2's step function: L_sep (eq. 8); ``c_mix`` / ``h_mix`` False zero α2 / β2."""
    return partial(separator_step, weights=weights, alpha2=config.alpha2 if c_mix else 0.0,
                   frame_level=config.mixture_level == "frame",
                   beta2=config.beta2 if h_mix else 0.0, n_harmonics=config.n_harmonics, tuning_hz=config.tuning_hz)


def step3(config: ScoreConfig, weights, aml: bool = True, atl: bool = True, generator=None):
    """Step 3's step function: L_sep for the separator and L_TL-3 (eq. 11) for the transcriptor; ``aml`` /
    ``atl`` False zero α3 / β3. ``generator`` draws the remixes of eq. 9."""
    return partial(step2(config, weights), joint=True, alpha1=config.alpha1, beta1=config.beta1,
                   alpha3=config.alpha3 if aml else 0.0, beta3=config.beta3 if atl else 0.0, generator=generator)


class Stages:
    """The paper's training stages (§2-3.3) on one data set, each trained by ``runner`` (a
    :class:`weakmir.train.engine.FitRunner`, or a stage runner that caches and resumes them, with the same ``train`` call).

    ``train`` / ``valid``: :class:`~weakmir.data.scores.ScoreClips`; ``weights``: the class weights
    (:func:`data_weights`); ``schedule``: the engine's ``lr_patience`` / ``stop_patience`` (§3.2: 2, 10;
    ignored without ``valid``). Each stage seeds its model's initialisation (``config.seed`` + its own
    offset) and its training, so a stage trains the same wherever and whenever it runs.
    """

    STEP2 = {"c-mix": (True, False), "h-mix": (False, True), "c-mix + h-mix": (True, True)}
    STEP3 = {"fine-tune": (False, False), "fine-tune + AML": (True, False), "fine-tune + ATL": (False, True),
             "fine-tune + AML + ATL": (True, True)}

    def __init__(self, runner, config: ScoreConfig, train, valid=None, weights=None, schedule: dict | None = None):
        self.runner, self.C, self.train, self.valid, self.weights = runner, config, train, valid, weights
        self.schedule = dict(schedule or {}) if valid is not None else {}

    @classmethod
    def step3_setup(cls, config: ScoreConfig) -> str:
        """The :attr:`STEP3` setup whose adversarial terms ``config``'s α3 / β3 switch on."""
        return next(k for k, v in cls.STEP3.items() if v == (bool(config.alpha3), bool(config.beta3)))

    def kwargs(self) -> dict:
        return model_kwargs(self.C, self.train.instruments)

    def _run(self, name, model, step, steps, settings, trains=None, seed=0, also=None, generators=()):
        return self.runner.train(name, model, step, self.train, steps, self.C.batch_size, self.C.lr, settings,
                                 model.kwargs(), valid=self.valid, trains=trains, also=also, seed=self.C.seed + seed,
                                 generators=generators, **self.schedule)

    def _build(self, name: str, offset: int):
        from ..models import build

        torch.manual_seed(self.C.seed + offset)
        return build(name, **self.kwargs())

    def transcriptor(self, steps: int, name: str = "transcriptor step 1"):
        """Step 1: the transcriptor on mixtures and scores (eq. 4)."""
        return self._run(name, self._build("tcn_transcriptor", 0), step1(self.C, self.weights), steps, {})

    def isolated(self, setup: str, critic, steps: int, critic_name: str = "transcriptor step 1"):
        """Step 2, setup ``setup`` of :attr:`STEP2`: a separator against the frozen ``critic`` (eq. 8)."""
        c_mix, h_mix = self.STEP2[setup]
        sep = self._build("tcn_separator", 1)
        return self._run(f"isolated {setup}", sep, step2(self.C, self.weights, c_mix, h_mix), steps,
                         {"critic": critic_name}, SeparatorWithCritic(sep, critic), seed=1)

    def fine_tune(self, setup: str, transcriptor, start: str, separator, steps: int):
        """Step 3, setup ``setup`` of :attr:`STEP3`: copies of ``transcriptor`` and of the step-2 ``separator``
        (of setup ``start``) trained jointly (eq. 8 + eq. 11). Returns ``(transcriptor, separator)``."""
        import copy

        tr, sep = copy.deepcopy(transcriptor), copy.deepcopy(separator)
        gen = torch.Generator().manual_seed(self.C.seed)
        self._run(setup, sep, step3(self.C, self.weights, *self.STEP3[setup], generator=gen), steps,
                  {"start": f"isolated {start}"}, SeparatorWithCritic(sep, tr), seed=2, also={"transcriptor": tr},
                  generators=(gen,))
        return tr, sep

    def supervised(self, steps: int):
        """The upper bound (§3.3): the same separator, L1 on the true source magnitudes."""
        return self._run("supervised", self._build("tcn_separator", 3), supervised_step, steps, {}, seed=3)

    def classifier(self, steps: int):
        """The baseline's critic [16]: frame-wise instrument activity of the mixture."""
        return self._run("classifier", self._build("tcn_classifier", 4), partial(classifier_step, weights=self.weights),
                         steps, {}, seed=4)

    def classifier_baseline(self, classifier, steps: int, alpha2: float):
        """The separator trained against the classifier critic [16] (§3.3), with step 2's mixture loss."""
        sep = self._build("tcn_separator", 5)
        step = partial(classifier_separator_step, weights=self.weights, alpha2=alpha2,
                       frame_level=self.C.mixture_level == "frame")
        return self._run("classifier baseline", sep, step, steps, {"critic": "classifier"},
                         SeparatorWithCritic(sep, classifier), seed=5)


def train_three_steps(manifest, config: ScoreConfig, out=None, progress: bool = False) -> dict:
    """Step 1 (transcriptor on mixtures), step 2 (separator c-mix + h-mix, frozen transcriptor critic),
    step 3 (joint, with AML / ATL per ``alpha3`` / ``beta3``). Writes ``transcriptor_1.ckpt``,
    ``separator_2.ckpt``, ``transcriptor_3.ckpt``, ``separator_3.ckpt`` to ``out`` when given.

    Returns ``{"transcriptor", "separator", "transcriptor_1", "separator_2", "histories", "weights"}``.
    """
    from pathlib import Path

    from ..data.scores import ScoreClips
    from ..train import checkpoint

    data = ScoreClips.from_manifest(manifest, config.instruments, config.splits, config.sample_rate,
                                    config.hop_length, config.seconds, config.examples_per_epoch, config.seed)
    _, weights = data_weights(data, config.class_weights)
    from ..train.engine import FitRunner

    runner = FitRunner()
    st = Stages(runner, config, data, weights=weights)
    tr1 = st.transcriptor(config.steps[0])
    sep2 = st.isolated("c-mix + h-mix", tr1, config.steps[1])
    setup = Stages.step3_setup(config)
    tr, sep = st.fine_tune(setup, tr1, "c-mix + h-mix", sep2, config.steps[2])
    if out is not None:
        out = Path(out)
        meta = {"method": "score-supervised", "config": asdict(config)}
        for name, m in (("transcriptor_1", tr1), ("separator_2", sep2), ("transcriptor_3", tr), ("separator_3", sep)):
            checkpoint.save(out / f"{name}.ckpt", m, m.kwargs(), meta)
    h = runner.curves
    return {"transcriptor": tr, "separator": sep, "transcriptor_1": tr1, "separator_2": sep2,
            "histories": {"step1": h["transcriptor step 1"].losses, "step2": h["isolated c-mix + h-mix"].losses,
                          "step3": h[setup].losses},
            "weights": None if weights is None else weights.tolist(), "instruments": data.instruments}


__all__ += ["ScoreConfig", "data_weights", "model_kwargs", "step1", "step2", "step3", "Stages",
            "train_three_steps"]
