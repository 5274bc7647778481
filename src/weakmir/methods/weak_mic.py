"""Weak-MIC (weak-mic_gururani_thesis): instrument tagging from clips with a few clip-level tags.

The thesis's losses, steps and stages, each with its equation number:

* **BCE_p** (eq. 3.5), :func:`bce_partial`: ``−g(p_y)/L Σ_{l∈L_o} [y_l log q_l + (1 − y_l) log(1 − q_l)]``
  with ``g(p) = α p^γ + β`` (α, β, γ = 1, 0, −1: the mean over the observed labels). Missing labels
  are a mask: they add nothing. A clip with no observed label adds nothing (g would be infinite).
* **missing as negative** (the wrong way, a baseline row): every unknown label taken as absent
  (:func:`missing_as_negative`), then plain BCE over all 20.
* **balanced BCE** (eq. 3.6-3.8), :func:`bce_balanced`: the positive term of BCE_p weighted by
  ``w_p = Neg / Pos`` of each class over the observed training labels (:func:`positive_weights`); the
  three settings of Table 3.2 (BL from scratch, BL FT: the trained ATT fine-tuned 50 epochs, BL FT final:
  only the attention and prediction layers fine-tuned) are stages in :func:`train_tagger`.
* **mean teacher** (eq. 5.1-5.4), :class:`MeanTeacher`: the teacher is the EMA of the student after
  every step (eq. 5.2, α = 0.999); loss ``BCE_p(y, q) + β J_CR(q, q')`` with ``J_CR = ||q − q'||² / 20``
  over all labels, observed or not (eq. 5.3-5.4), β = 3 ramped up over 100 epochs with the sigmoid of
  eq. A.1 (:func:`weakmir.train.engine.sigmoid_rampup`); learning rate halved every 30 epochs, or (the
  varying-ratio run of §5.5) ramped up and down (:func:`weakmir.train.engine.lr_factor`). The teacher
  is tested and kept.
* **M2 ELBO** (eq. 4.5-4.8), :func:`dgm_loss`: per class (binary relevance), ``L(x, y)`` for the clips
  where the class is observed, ``U(x) = Σ_y q(y|x) L(x, y) + H(q(y|x))`` (written as a loss: minus the
  entropy) where it is not, plus ``α E_Dl[−log q(y|x)]`` with ``α = β |Du| / |Dl|`` of that class.
  ``p(x|y, z)`` is a unit-variance Gaussian on the standardised features (``½||x − x'||²``), ``p(y)``
  uniform, ``q(z|x, y)`` diagonal Gaussian (:func:`kl_normal`).

Where this differs from the thesis, and why:

* **Minibatches** (Algorithm 1 draws a batch of Du and a batch of Dl per step and class): the 20
  binary DGMs are trained at once on one batch of clips, each class's labelled and unlabelled clips
  being the batch's clips where that class is / is not observed; eq. 4.8 is summed over the batch and
  divided by its size, so its expectation is the thesis's objective per clip.
* **EMA warm-up and horizon**: the teacher's decay is ``min(1 − 1/(step + 1), α)`` (Tarvainen &
  Valpola's code). α = 0.999 (the ``paper`` recipe) averages over ~1 000 steps, 4 % of the thesis's
  ~23 000; the ``quick`` recipe's runs have ~400 steps, where 0.999 makes the teacher the plain mean of
  every student since the random start (measured: MT 1-7 points of F1 below ATT), so it uses
  α = 0.97 (~33 steps), picked on the valid split, as is Figure 5.3's β (3; the thesis's MSD grid was
  16 / 32 / 64).
* **The teacher is updated at the start of each step** from the student the previous step left (one
  EMA update per optimiser step, as eq. 5.2; the very last step's update is not applied).
* **DGM input**: the ``quick`` recipe feeds the bag's mean over instances (128 values) instead of the
  flattened bag (1 280), with 128 / 64 hidden units instead of Table 4.1's 512 / 256: 20 classes of
  the thesis's sizes are ~50 M parameters, ~3 min per seed on 2 cores. ``paper`` keeps the thesis's.
* **Model selection**: every stage keeps the weights of the epoch with the lowest validation BCE_p on
  the observed validation labels (the thesis: "the epoch with the best validation loss"); DGM too,
  where the thesis picks per class by validation performance across 5 runs.

Shapes: bags ``(batch, instances, dim)``, labels and masks ``(batch, classes)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..data.features import fit_instances, read_features
from ..models import build
from ..models.mil import HEADS, Tagger
from ..train.engine import sigmoid_rampup

EPS = 1e-7


# -- losses ---------------------------------------------------------------------------------------------

def bce_partial(q: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, alpha: float = 1.0, beta: float = 0.0,
                gamma: float = -1.0, pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """eq. 3.5: BCE over the observed labels of each clip, scaled by ``g(p_y)/L``; mean over the clips
    with at least one observed label (0 when none has). ``q``, ``y``, ``mask`` ``(batch, classes)``;
    ``pos_weight`` ``(classes,)`` weights the positive term (eq. 3.7)."""
    q = q.clamp(EPS, 1 - EPS)
    wp = 1.0 if pos_weight is None else pos_weight
    ll = wp * y * torch.log(q) + (1 - y) * torch.log(1 - q)
    L = q.shape[1]
    n_obs = mask.sum(dim=1)
    has = n_obs > 0
    if not has.any():
        return q.sum() * 0.0
    p = n_obs[has] / L
    g = alpha * p.pow(gamma) + beta
    per_clip = -(g / L) * (ll * mask)[has].sum(dim=1)
    return per_clip.mean()


def missing_as_negative(y: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The wrong way: every unknown label taken as absent. Returns ``(y, all-ones mask)``."""
    return y * mask, torch.ones_like(mask)


def positive_weights(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """eq. 3.8: ``w_p = Neg / Pos`` per class over the observed labels ``(n, classes)`` -> ``(classes,)``
    (1 where a class has no observed positive or negative)."""
    pos = ((y > 0) & (mask > 0)).sum(axis=0).astype(float)
    neg = ((y == 0) & (mask > 0)).sum(axis=0).astype(float)
    w = np.where((pos > 0) & (neg > 0), neg / np.maximum(pos, 1), 1.0)
    return w.astype(np.float32)


def bce_balanced(q, y, mask, pos_weight) -> torch.Tensor:
    """eq. 3.7 within BCE_p: the positive term weighted by ``pos_weight`` ``(classes,)`` (:func:`positive_weights`)."""
    return bce_partial(q, y, mask, pos_weight=pos_weight)


def consistency(q: torch.Tensor, q_teacher: torch.Tensor) -> torch.Tensor:
    """eq. 5.4: ``||q − q'||² / classes`` per clip, mean over the batch. ``(batch, classes)`` each."""
    return ((q - q_teacher) ** 2).sum(dim=1).mean() / q.shape[1]


def ema_update(teacher: nn.Module, student: nn.Module, alpha: float) -> None:
    """eq. 5.2: ``θ' ← α θ' + (1 − α) θ`` for every parameter; buffers (batch-norm statistics) are copied."""
    with torch.no_grad():
        for t, s in zip(teacher.parameters(), student.parameters()):
            t.mul_(alpha).add_(s.detach(), alpha=1 - alpha)
        for t, s in zip(teacher.buffers(), student.buffers()):
            t.copy_(s)


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(μ, σ²) || N(0, I))`` summed over the last axis: ``−½ Σ (1 + log σ² − μ² − σ²)`` (0 for a standard normal)."""
    return -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(dim=-1)


def dgm_terms(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``L(x, y)`` of eq. 4.5 for both values of y and the classifier's log q(y|x).

    ``x`` ``(batch, instances, dim)``; returns ``(L (classes, batch, 2), log_q (classes, batch, 2))``.
    """
    xk = model.bag_input(x)
    K, B, _ = xk.shape
    losses = []
    for c in (0, 1):
        y = torch.zeros(K, B, 2, dtype=x.dtype, device=x.device)
        y[..., c] = 1
        mu, logvar = model.encode(xk, y)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        rec = model.decode(z, y)
        nll = 0.5 * ((xk - rec) ** 2).sum(dim=-1)  # −log p(x|y, z) up to a constant (unit variance)
        losses.append(nll + kl_normal(mu, logvar) - math.log(0.5))  # −log p(y), p(y) uniform
    return torch.stack(losses, dim=-1), torch.log_softmax(model.logits(x), dim=-1)


def dgm_loss(model, x, y, mask, alpha) -> torch.Tensor:
    """eq. 4.8 on a batch: per class ``[Σ_l L(x, y) + Σ_u U(x) + α_k Σ_l −log q(y|x)] / batch``, mean over
    the classes. ``y``, ``mask`` ``(batch, classes)``; ``alpha`` ``(classes,)`` (:func:`dgm_alpha`)."""
    L, log_q = dgm_terms(model, x)
    lab = mask.T > 0  # (classes, batch)
    yi = y.T.long().clamp(0, 1)
    L_lab = L.gather(-1, yi.unsqueeze(-1)).squeeze(-1)
    ce = -log_q.gather(-1, yi.unsqueeze(-1)).squeeze(-1)
    q = log_q.exp()
    U = (q * L).sum(-1) + (q * log_q).sum(-1)  # Σ_y q L − H(q)   (eq. 4.6 as a loss)
    B = x.shape[0]
    per_class = (torch.where(lab, L_lab + alpha[:, None] * ce, U)).sum(dim=1) / B
    return per_class.mean()


def dgm_alpha(mask: np.ndarray, beta: float) -> np.ndarray:
    """``α = β |Du| / |Dl|`` per class (§4.4.1) from the training mask ``(n, classes)`` -> ``(classes,)``."""
    dl = (mask > 0).sum(axis=0).astype(float)
    du = len(mask) - dl
    return (beta * du / np.maximum(dl, 1)).astype(np.float32)


# -- data -----------------------------------------------------------------------------------------------

class Bags(torch.utils.data.Dataset):
    """Standardised bags with observed labels: item ``i`` is ``(x (instances, dim), y (classes,), mask (classes,))``."""

    def __init__(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray):
        self.x = torch.as_tensor(np.asarray(x, np.float32))
        self.y = torch.as_tensor(np.asarray(y, np.float32))
        self.mask = torch.as_tensor(np.asarray(mask, np.float32))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i], self.mask[i]


class PairedBags(torch.utils.data.Dataset):
    """§5.5's disjoint labelled and unlabelled subsets: an epoch is one pass over the unlabelled clips,
    each paired with a labelled one (cycled, reshuffled every epoch). Item: ``(x_l, y_l, mask_l, x_u)``."""

    def __init__(self, labelled: Bags, unlabelled_x: np.ndarray, seed: int = 0):
        self.lab, self.xu = labelled, torch.as_tensor(np.asarray(unlabelled_x, np.float32))
        self.seed, self.epoch = seed, 0
        self._perm = None
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        reps = int(np.ceil(len(self.xu) / len(self.lab)))
        rng = np.random.default_rng([self.seed, epoch])
        self._perm = np.concatenate([rng.permutation(len(self.lab)) for _ in range(reps)])

    def __len__(self) -> int:
        return len(self.xu)

    def __getitem__(self, i):
        x, y, m = self.lab[int(self._perm[i])]
        return x, y, m, self.xu[i]


# -- steps ----------------------------------------------------------------------------------------------

def _xym(batch):
    """A batch of :class:`Bags` or :class:`PairedBags` as one ``(x, y, mask)``: the unlabelled half of a
    pair enters with an all-zero mask."""
    if len(batch) == 4:
        xl, yl, ml, xu = batch
        return (torch.cat([xl, xu]), torch.cat([yl, torch.zeros_like(yl)]), torch.cat([ml, torch.zeros_like(ml)]))
    return batch


def supervised_step(loss: str = "bce_p", pos_weight=None):
    """``step(head, batch)`` for a supervised head: ``loss`` ``bce_p`` (eq. 3.5), ``balanced`` (eq. 3.7,
    ``pos_weight``) or ``missing_negative``. In eval mode (validation) every head is scored by BCE_p on
    the observed labels."""
    pw = None if pos_weight is None else torch.as_tensor(pos_weight)

    def step(head, batch):
        x, y, mask = _xym(batch)
        q = head(x)
        if not head.training:
            val = bce_partial(q, y, mask)
            return val, {"bce_p": float(val.detach())}
        if loss == "missing_negative":
            y, mask = missing_as_negative(y, mask)
            value = bce_partial(q, y, mask)
        elif loss == "balanced":
            value = bce_balanced(q, y, mask, pw)
        else:
            value = bce_partial(q, y, mask)
        return value, {loss: float(value.detach())}

    return step


class MeanTeacher(nn.Module):
    """A student and its EMA teacher (eq. 5.2); ``teacher`` is the module that is kept and tested.

    ``steps_per_epoch`` turns the step count into epochs for the consistency ramp-up.
    Shape: ``forward`` = the teacher's ``(batch, instances, dim) -> (batch, classes)``.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, ema: float = 0.999, weight: float = 3.0,
                 rampup_epochs: float = 100.0, steps_per_epoch: int = 1):
        super().__init__()
        self.student, self.teacher = student, teacher
        teacher.load_state_dict(student.state_dict())
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.ema, self.weight, self.rampup, self.steps_per_epoch = ema, weight, rampup_epochs, max(steps_per_epoch, 1)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def consistency_weight(self, epoch: float) -> float:
        """β · w(epoch / ramp-up) (eq. 5.3 with eq. A.1)."""
        return self.weight * (sigmoid_rampup(epoch / self.rampup) if self.rampup > 0 else 1.0)

    def decay(self, step: int) -> float:
        """The EMA weight at ``step`` (module docstring: ``min(1 − 1/(step + 1), α)``)."""
        return min(1.0 - 1.0 / (step + 1), self.ema)

    def forward(self, x):
        return self.teacher(x)


def mean_teacher_step(mt: MeanTeacher, batch):
    """eq. 5.3 for the student (the teacher follows by eq. 5.2); in eval mode: the teacher's BCE_p."""
    x, y, mask = _xym(batch)
    if not mt.training:
        val = bce_partial(mt.teacher(x), y, mask)
        return val, {"bce_p": float(val)}
    step = int(mt.steps)
    if step > 0:
        ema_update(mt.teacher, mt.student, mt.decay(step))
    mt.steps += 1
    q = mt.student(x)
    with torch.no_grad():
        q_t = mt.teacher(x)
    sup = bce_partial(q, y, mask)
    beta = mt.consistency_weight(step / mt.steps_per_epoch)
    cr = consistency(q, q_t)
    return sup + beta * cr, {"bce_p": float(sup.detach()), "consistency": float(cr.detach()), "beta": beta}


def dgm_step(alpha):
    """``step(model, batch)`` for :class:`weakmir.models.mil.M2Bank` (eq. 4.8); eval mode: BCE_p of q(y|x)."""
    a = torch.as_tensor(alpha)

    def step(model, batch):
        x, y, mask = _xym(batch)
        if not model.training:
            val = bce_partial(model(x), y, mask)
            return val, {"bce_p": float(val.detach())}
        loss = dgm_loss(model, x, y, mask, a)
        return loss, {"elbo": float(loss.detach())}

    return step


# -- stages ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TagConfig:
    """One tagger's training: the head (``att``, ``fc_t``, ``fc``, ``rnn``, ``rf``, ``mt``, ``dgm``), the loss,
    the schedule (thesis §3.2.2: Adam 5e-4, batch 128, 250 epochs, best validation epoch)."""

    model: str = "att"
    loss: str = "bce_p"  # bce_p | balanced | missing_negative
    epochs: int = 250
    batch_size: int = 128
    lr: float = 5e-4
    weight_decay: float = 0.0
    dropout: float = 0.6  # ATT / FC_T / MT embedding dropout
    fc_hidden: tuple = (512, 512, 128)
    fc_dropout: float = 0.5
    rnn_hidden: int = 64
    rf_trees: int = 100
    rf_max_depth: int | None = 8
    mt_ema: float = 0.999
    mt_weight: float = 3.0
    mt_rampup_epochs: float = 100.0
    mt_lr: float = 1e-3
    lr_schedule: dict = field(default_factory=dict)  # {} constant; {"every": 30, "factor": 0.5}; {"up", "down", "epochs"}
    dgm_h1: int = 512
    dgm_h2: int = 256
    dgm_h3: int = 0
    dgm_z: int = 64
    dgm_classifier: tuple = (512, 512, 128)
    dgm_pool: str = "flat"  # flat: the bag flattened (thesis); mean: averaged over instances (CPU presets)
    dgm_beta: float = 16.0
    dgm_lr: float = 2e-4
    dgm_weight_decay: float = 1e-5
    finetune_epochs: int = 50  # BL FT / BL FT final


def head_kwargs(cfg: TagConfig, classes: int, instances: int, dim: int, seed: int = 0) -> dict:
    """The constructor arguments of ``cfg.model``'s head (:data:`weakmir.models.mil.HEADS`)."""
    m = cfg.model
    if m in ("att", "mt", "fc_t"):
        return {"dim": dim, "hidden": dim, "classes": classes, "dropout": cfg.dropout,
                "pooling": "mean" if m == "fc_t" else "attention"}
    if m == "fc":
        return {"instances": instances, "dim": dim, "hidden": list(cfg.fc_hidden), "classes": classes,
                "dropout": cfg.fc_dropout}
    if m == "rnn":
        return {"dim": dim, "hidden": cfg.rnn_hidden, "classes": classes}
    if m == "rf":
        return {"classes": classes, "trees": cfg.rf_trees, "max_depth": cfg.rf_max_depth, "seed": seed}
    if m == "dgm":
        return {"instances": instances, "dim": dim, "classes": classes, "h1": cfg.dgm_h1, "h2": cfg.dgm_h2,
                "h3": cfg.dgm_h3, "z": cfg.dgm_z, "classifier": list(cfg.dgm_classifier), "dropout": cfg.fc_dropout,
                "pool": cfg.dgm_pool}
    raise ValueError(f"unknown weak-mic model {m!r}; use one of {', '.join(HEADS)}")


def make_tagger(cfg: TagConfig, classes, mean, std, embedding: dict | None, instances: int = 10,
                seed: int = 0, features: str = "embedding") -> Tagger:
    """An untrained :class:`Tagger` for ``cfg.model`` with the standardisation ``mean`` / ``std`` ``(dim,)``."""
    dim = len(mean)
    torch.manual_seed(seed)
    t = Tagger(HEADS[cfg.model], head_kwargs(cfg, len(classes), instances, dim, seed), tuple(classes), dim,
               instances, embedding, features)
    t.mean.copy_(torch.as_tensor(np.asarray(mean, np.float32)))
    t.std.copy_(torch.as_tensor(np.asarray(std, np.float32)))
    return t


def train_tagger(runner, name: str, cfg: TagConfig, train, valid: Bags, tagger: Tagger, seed: int = 0,
                 init: Tagger | None = None, freeze_embedding: bool = False) -> Tagger:
    """Train ``tagger`` (from :func:`make_tagger`) on the standardised ``train`` bags (:class:`Bags`, or
    :class:`PairedBags` for §5.5) with ``valid`` for model selection; a stage of ``runner``. ``init``: start
    from this trained tagger's head (BL FT); ``freeze_embedding``: train only the attention and prediction
    layers (BL FT final). Returns ``tagger``."""
    head = tagger.head
    n = len(train)
    bs = min(cfg.batch_size, n)
    steps_per_epoch = max(n // bs, 1)
    kw = tagger.kwargs()
    settings = {"cfg": {k: v for k, v in cfg.__dict__.items()}, "init": init is not None, "freeze": freeze_embedding}
    if cfg.model == "rf":  # scikit-learn, no optimiser steps: fitted (in seconds) and saved, never cached
        x, y, m = (train.lab if isinstance(train, PairedBags) else train)[:]
        head.fit(x.numpy(), y.numpy(), m.numpy())
        if hasattr(runner, "path"):
            from ..train import checkpoint

            checkpoint.save(runner.path(name), tagger, tagger.kwargs(),
                            {"method": runner.method, "stage": name, "recipe": runner.recipe, "data": runner.data})
        return tagger
    if init is not None:
        head.load_state_dict(init.head.state_dict())
    for p in head.parameters():
        p.requires_grad_(True)
    if freeze_embedding:
        for p in head.embedding.parameters():
            p.requires_grad_(False)
        # batch-norm statistics stay those of the trained embedding
    epochs = cfg.finetune_epochs if init is not None else cfg.epochs
    steps = epochs * steps_per_epoch
    lr, wd, trains, sched = cfg.lr, cfg.weight_decay, head, dict(cfg.lr_schedule) or None
    if cfg.model == "mt":
        student = build(HEADS["mt"], **head.kwargs())
        torch.manual_seed(seed + 1)
        trains = MeanTeacher(student, head, cfg.mt_ema, cfg.mt_weight, cfg.mt_rampup_epochs, steps_per_epoch)
        step, lr = mean_teacher_step, cfg.mt_lr
    elif cfg.model == "dgm":
        _, _, m = (train.lab if isinstance(train, PairedBags) else train)[:]
        step = dgm_step(dgm_alpha(m.numpy(), cfg.dgm_beta))
        lr, wd = cfg.dgm_lr, cfg.dgm_weight_decay
    else:
        pw = None
        if cfg.loss == "balanced":
            _, y, m = (train.lab if isinstance(train, PairedBags) else train)[:]
            pw = positive_weights(y.numpy(), m.numpy())
        step = supervised_step(cfg.loss, pw)
    runner.train(name, tagger, step, train, steps, bs, lr, settings, kw, valid=valid, trains=trains, seed=seed,
                 weight_decay=wd, lr_schedule=sched, keep_best=True)
    if freeze_embedding:
        for p in head.embedding.parameters():
            p.requires_grad_(True)
    return tagger


def predict(tagger: Tagger, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Probabilities ``(n, classes)`` of raw (unstandardised) bags ``(n, instances, dim)``."""
    tagger.eval()
    xt = torch.as_tensor(np.asarray(x, np.float32))
    with torch.no_grad():
        return torch.cat([tagger(xt[i:i + batch_size]) for i in range(0, len(xt), batch_size)]).numpy()


# -- instance features -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EmbeddingConfig:
    """Pretraining of the frozen embedding network (:class:`weakmir.models.embedding.MelEmbedding`) on a
    synth corpus disjoint from the tagging corpus, with strong (0.96-s window) instrument labels."""

    checkpoint: str = ""  # a trained embedding to use instead (a file, or "mel_embedding": untrained)
    tracks: int = 200  # clips of the pretraining corpus (weakmir synth --preset openmic, its own seed)
    seed: int = 1000  # the pretraining corpus's synth seed (the tagging corpus uses another)
    channels: tuple = (16, 32, 64, 128)
    dim: int = 128
    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3


def window_labels(track, manifest, classes, windows: int, hop: float = 0.96) -> np.ndarray:
    """Strong labels ``(windows, classes)`` of a synth clip: class ``k`` is on in window ``i`` when a stem
    of that class (its first instrument's OpenMIC tag) has a note sounding in ``[i hop, (i + 1) hop)``."""
    from ..data.labels import instrument_tag
    from ..data.notes import read_notes

    out = np.zeros((windows, len(classes)), np.float32)
    idx = {c: i for i, c in enumerate(classes)}
    for s in track.stems:
        tag = instrument_tag(s.instruments[0]) if s.instruments else None
        if tag not in idx or s.notes is None:
            continue
        notes = read_notes(manifest.resolve(s.notes))
        for on, off, *_ in notes:
            a, b = int(on // hop), int(max(off + 0.05, on) // hop)
            out[max(a, 0):min(b, windows - 1) + 1, idx[tag]] = 1.0
    return out


def clip_audio(manifest, track) -> np.ndarray:
    """The clip's mixture as mono 16 kHz ``(samples,)`` (the embedding's input)."""
    from ..audio.io import load
    from ..models.embedding import SAMPLE_RATE

    x, _ = load(manifest.resolve(track.mixture), SAMPLE_RATE, 1)
    return x[0]


def embedding_data(manifest, classes, progress: bool = False):
    """Log-mel examples ``(n, 1, 64, 96)`` and strong labels ``(n, classes)`` of every clip of ``manifest``
    (:func:`window_labels`), for :func:`pretrain_embedding`. Returns ``(train, valid)`` :class:`TensorDataset` s
    (valid: the manifest's valid split, else None)."""
    from tqdm import tqdm

    from ..models.embedding import MelEmbedding, instances

    front = MelEmbedding()
    sets = {"train": ([], []), "valid": ([], [])}
    for t in tqdm(manifest.tracks, desc="embedding corpus", unit="clip", disable=not progress, leave=False):
        split = "valid" if t.split == "valid" else "train"
        ex = torch.from_numpy(instances(clip_audio(manifest, t)))
        with torch.no_grad():
            sets[split][0].append(front.logmel(ex))
        sets[split][1].append(torch.from_numpy(window_labels(t, manifest, classes, len(ex))))
    out = [torch.utils.data.TensorDataset(torch.cat(m), torch.cat(y)) if m else None for m, y in sets.values()]
    return out[0], out[1]


def embedding_step(model, batch):
    """Pretraining step: BCE of the embedding's class head on the strong window labels."""
    mel, y = batch
    loss = nn.functional.binary_cross_entropy_with_logits(model.head(model.embed_mel(mel)), y)
    return loss, {"bce": float(loss.detach())}


def pretrain_embedding(runner, cfg: EmbeddingConfig, train, valid, classes: int, seed: int = 0):
    """Train :class:`weakmir.models.embedding.MelEmbedding` on ``train`` (:func:`embedding_data`), a stage
    ``embedding`` of ``runner``; returns it frozen (eval mode)."""
    kwargs = {"channels": list(cfg.channels), "dim": cfg.dim, "classes": classes}
    torch.manual_seed(seed)
    model = build("mel_embedding", **kwargs)
    runner.train("embedding", model, embedding_step, train, cfg.steps, min(cfg.batch_size, len(train)), cfg.lr,
                 {"tracks": cfg.tracks, "seed": cfg.seed}, kwargs, valid=valid, seed=seed,
                 keep_best=valid is not None)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def clip_features(manifest, tracks, embedding=None, instances: int = 10, progress: bool = False) -> np.ndarray:
    """Instance features ``(clips, instances, dim)`` of ``tracks``: their ``features`` file when the manifest
    has one (OpenMIC's VGGish), else the ``embedding`` of their mixture; cut or tiled to ``instances``."""
    from tqdm import tqdm

    from ..errors import WeakmirError
    from ..models.embedding import embed_audio

    out = []
    for t in tqdm(tracks, desc="features", unit="clip", disable=not progress, leave=False):
        if t.features is not None:
            f = read_features(manifest.resolve(t.features))
        elif embedding is not None and t.mixture is not None:
            f = embed_audio(embedding, clip_audio(manifest, t))
        else:
            raise WeakmirError(f"{manifest.path}: track {t.id} has no features and no mixture; weak-mic needs "
                               "one of them (weakmir dataset openmic writes features)")
        out.append(fit_instances(f, instances))
    return np.stack(out).astype(np.float32)


def labels_of(tracks, classes) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Observed labels and mask ``(clips, classes)`` from the tracks' tags, and the true labels (None unless
    every track has ``true_tags``)."""
    y = np.zeros((len(tracks), len(classes)), np.float32)
    m = np.zeros_like(y)
    for i, t in enumerate(tracks):
        if t.tags is not None:
            y[i], m[i] = t.tags.vector(classes)
    if all(t.true_tags is not None for t in tracks):
        true = np.array([[1.0 if c in t.true_tags else 0.0 for c in classes] for t in tracks], np.float32)
    else:
        true = None
    return y, m, true


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation ``(dim,)`` of training bags ``(n, instances, dim)``."""
    flat = np.asarray(x, np.float64).reshape(-1, x.shape[-1])
    std = flat.std(axis=0)
    return flat.mean(axis=0).astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32)


__all__ = ["EmbeddingConfig", "window_labels", "clip_audio", "embedding_data", "embedding_step",
           "pretrain_embedding", "clip_features", "labels_of",
           "bce_partial", "missing_as_negative", "positive_weights", "bce_balanced", "consistency", "ema_update",
           "kl_normal", "dgm_terms", "dgm_loss", "dgm_alpha", "Bags", "PairedBags", "supervised_step",
           "MeanTeacher", "mean_teacher_step", "dgm_step", "TagConfig", "head_kwargs", "make_tagger",
           "train_tagger", "predict", "standardisation"]
