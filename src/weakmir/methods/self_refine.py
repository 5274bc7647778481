"""Self-refining of pseudo labels (Koo, Chae, Jeon, Lee — ISMIR 2023).

What is here:

* :func:`classifier_loss` — L_Ψ, mean absolute error between the classifier's
  sigmoid outputs and the multi-hot labels of a random mixture (§3.1), and
  :func:`classifier_bce`, the binary cross-entropy the paper found equal to it
  (the CPU default, see below). Missing labels can be masked.
* :func:`separation_loss` — §3.2: the estimates of the classes a multi-labelled
  source carries are summed before the loss (L1 on waveforms, Demucs' loss), and
  the per-group losses are summed.
* :func:`train_classifier` — Ψ trained on random mixtures (§3.1.1, chance rate
  0.5 per class, the effects chain) of the stems and labels given.
* :func:`relabel` — windowed inference over each whole stem (window = input
  size, hop = ¼ window, mean of windows, threshold 0.9; §4.2).
* :func:`train_separator` — a separator (Hybrid Demucs by default) trained on
  §3.2 mixtures of clean, noisy or refined labels, −14 LUFS input.
* :func:`refine` — the self-refining loop: Ψ_noisy on the observed labels,
  relabel; then Ψ_refined on the stems now inferred single-labelled (§4.2),
  relabel again; ``iterations`` times (the paper's proposed setting refines
  twice). Writes a new manifest (paths re-based, each stem's probabilities,
  new labels and the rule that decided them); the report of suspected
  mislabels is :func:`weakmir.experiments.self_refine.refine_page`.

Tables 1-3, Figure 4 and the learning curves on the embedded noisy pop corpus
are :mod:`weakmir.experiments.self_refine`; ``weakmir train self-refine``
(:mod:`weakmir.experiments.train`) trains the separator on a user's manifest.
Every training function takes a ``runner`` (default:
:class:`weakmir.train.engine.FitRunner`; the experiments pass a stage runner
that caches, resumes and keeps each model) and a stage ``name``.

Differences from the paper: Ψ's loss defaults to binary cross-entropy, not
MAE. §3.1 reports no difference between the two; on a CPU budget they differ
a lot: MAE's gradient vanishes wherever the sigmoid saturates on the wrong
side, and after 150 steps (quick preset, Ψ trained on clean labels) MAE
relabelled 25 % of the stems exactly right against BCE's 73 %. The ``paper``
preset and ``--loss mae`` use MAE. The classifier defaults to the CPU ``small``
ConvNeXt and a few hundred steps (``preset="tiny"`` and longer schedules give the
paper's setting); when no class reaches the threshold the top class is kept (a
stem always has a label; the paper does not say what it does then). The
``quick`` preset runs at 22.05 kHz with 1024 / 256 frames (the paper's 46 ms /
11.6 ms), trains each model for a few hundred steps, and its "+ fine-tune with
multi-labelled" ablation continues the single-labelled model for half as many
steps again, so that row has had 1.5 times the training of the others.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..audio.effects import EffectsConfig
from ..audio.io import load
from ..audio.silence import remove_silence
from ..data.labels import STEMS4, LabelSet
from ..data.manifest import Manifest
from ..data.mixing import MixDataset, RandomMixer, SeparationMixer, StemPool
from ..data.targets import group_estimates
from ..errors import WeakmirError
from ..files import atomic_write_text, check_output_folder
from ..infer.classify import classify, decide
from ..models import build
from ..train import checkpoint
from ..train.engine import FitRunner


# -- losses ------------------------------------------------------------------------------

def classifier_loss(probs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """L_Ψ: mean absolute error over known labels.

    Shape: probs, targets, mask ``(batch, classes)`` -> scalar.
    """
    if probs.shape != targets.shape or (mask is not None and mask.shape != probs.shape):
        raise ValueError(f"probs {tuple(probs.shape)}, targets {tuple(targets.shape)}"
                         f"{'' if mask is None else f', mask {tuple(mask.shape)}'} must have one shape")
    return _masked_mean((probs - targets).abs(), mask)


def _masked_mean(err: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``err`` over the entries ``mask`` keeps (all when ``mask`` is None)."""
    if mask is None:
        return err.mean()
    return (err * mask).sum() / mask.sum().clamp_min(1.0)


def separation_loss(estimates: torch.Tensor, targets: torch.Tensor, assignment: torch.Tensor,
                    group_mask: torch.Tensor, domain: str = "time", n_fft: int = 2048, hop_length: int = 512) -> torch.Tensor:
    """§3.2 loss between grouped estimates and group targets, summed over groups.

    ``domain="time"``: L1 on waveforms (Demucs, §4.2). ``domain="tf"``: MSE on
    STFT magnitudes (X-UMX, §4.2, without its multi-domain/combination terms).

    Shape: estimates ``(B, K, C, T)``, targets ``(B, G, C, T)``, assignment
    ``(B, G, K)``, group_mask ``(B, G)`` -> scalar (mean over batch and the rest).
    """
    if targets.shape[:2] != assignment.shape[:2] or group_mask.shape != targets.shape[:2]:
        raise ValueError(f"targets {tuple(targets.shape)}, assignment {tuple(assignment.shape)} and group_mask "
                         f"{tuple(group_mask.shape)} disagree on (batch, groups)")
    if estimates.shape[0] != targets.shape[0] or estimates.shape[2:] != targets.shape[2:]:
        raise ValueError(f"estimates {tuple(estimates.shape)} and targets {tuple(targets.shape)} disagree")
    grouped = group_estimates(estimates, assignment)  # (B, G, C, T)
    if domain == "time":
        per_group = (grouped - targets).abs().mean(dim=(-2, -1))  # (B, G)
    elif domain == "tf":
        from ..audio.spectral import magnitude

        d = magnitude(grouped, n_fft, hop_length) - magnitude(targets, n_fft, hop_length)
        per_group = (d**2).mean(dim=(-3, -2, -1))
    else:
        raise ValueError(f"unknown loss domain {domain!r}; use 'time' or 'tf'")
    return (per_group * group_mask).sum(dim=1).mean()


def separator_step(model, batch):
    """One §3.2 step: estimates of every class, grouped per source; L1 in time (Demucs) or,
    for X-UMX, MSE on magnitudes (the model's own STFT)."""
    est = model(batch["mixture"])
    if getattr(model, "registry_name", "") == "xumx":
        loss = separation_loss(est, batch["targets"], batch["assignment"], batch["group_mask"], domain="tf",
                               n_fft=model.n_fft, hop_length=model.hop_length)
    else:
        loss = separation_loss(est, batch["targets"], batch["assignment"], batch["group_mask"])
    return loss, {"loss": loss.detach()}


def classifier_bce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy on logits over known labels (the paper's alternative to MAE, §3.1).

    Shape: logits, targets, mask ``(batch, classes)`` -> scalar.
    """
    if logits.shape != targets.shape or (mask is not None and mask.shape != logits.shape):
        raise ValueError(f"logits {tuple(logits.shape)}, targets {tuple(targets.shape)} must have one shape")
    err = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
    return _masked_mean(err, mask)


def classifier_step(model, batch, loss: str = "mae"):
    """One Ψ step on a batch of random mixtures; ``loss="mae"`` (the paper's) or ``"bce"``."""
    if loss == "bce":
        value = classifier_bce(model.logits(batch["mixture"]), batch["labels"])
    else:
        value = classifier_loss(model(batch["mixture"]), batch["labels"])
    return value, {"loss": value.detach()}


# -- training and relabelling ---------------------------------------------------------------

@dataclass
class RefineConfig:
    preset: str = "small"
    steps: int = 300
    batch_size: int = 8
    lr: float = 1e-3
    chance: float = 0.5
    threshold: float = 0.9
    iterations: int = 2
    effects: bool = True
    seed: int = 0
    splits: tuple = ("train", "valid")
    examples_per_epoch: int = 512
    log_magnitude: bool = True
    sample_rate: int | None = None  # None: the corpus's own rate (no resampling)
    n_fft: int | None = None  # None: the paper's 2048 / 512 at 44.1 kHz, scaled to the rate (1024 / 256 at 22.05 kHz)
    hop_length: int | None = None
    preload: bool = False  # decode the training stems into memory once (small corpora)
    loss: str = "bce"  # or "mae" (§3.1's); the paper found them equal, BCE trains in a CPU budget, MAE does not


def stft_setting(config: RefineConfig, manifest: Manifest) -> tuple[int, int, int]:
    """``(sample_rate, n_fft, hop)`` of Ψ: the config's, or the corpus's rate with the paper's
    46 ms / 11.6 ms frames rounded to a power of two."""
    rates = sorted({s.sample_rate for t in manifest.tracks for s in t.stems})
    rate = config.sample_rate or (rates[-1] if rates else 44100)
    n_fft = config.n_fft or int(2 ** round(np.log2(2048 * rate / 44100)))
    return int(rate), int(n_fft), int(config.hop_length or n_fft // 4)


def labels_digest(labels_override) -> str | None:
    """A short hash of a ``{(track, stem): [labels]}`` relabelling (part of a stage's cache key)."""
    if labels_override is None:
        return None
    import hashlib

    items = sorted((f"{t}/{s}", sorted(v)) for (t, s), v in labels_override.items())
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


def train_classifier(manifest: Manifest, config: RefineConfig, labels_override=None, single_only: bool = False,
                     progress: bool = False, view: str = "observed", runner=None, name: str = "classifier"):
    """Ψ on random mixtures of the manifest's observed stems (or ``labels_override``; ``view="clean"``: true sources).

    Returns ``(model, constructor kwargs, FitResult)``.
    """
    if config.loss not in ("mae", "bce"):
        raise WeakmirError(f"unknown classifier loss {config.loss!r}; use 'mae' or 'bce'")
    rate, n_fft, hop = stft_setting(config, manifest)
    pool = StemPool.from_manifest(manifest, view=view, splits=config.splits, labels_override=labels_override,
                                  sample_rate=rate, progress=progress)
    if config.preload:
        pool.preload()
    mixer = RandomMixer(pool, seconds=2.97, chance=config.chance,
                        effects=EffectsConfig() if config.effects else None, single_only=single_only)
    data = MixDataset(mixer, config.examples_per_epoch, seed=config.seed)
    torch.manual_seed(config.seed)
    kwargs = {"preset": config.preset, "classes": list(pool.vocab), "log_magnitude": config.log_magnitude,
              "sample_rate": rate, "n_fft": n_fft, "hop_length": hop}
    model = build("convnext", **kwargs)
    runner = runner or FitRunner()
    settings = {"config": asdict(config), "view": view, "single_only": single_only,
                "labels": labels_digest(labels_override)}
    runner.train(name, model, functools.partial(classifier_step, loss=config.loss), data, config.steps,
                 config.batch_size, config.lr, settings, kwargs, seed=config.seed, progress=progress)
    return model, kwargs, runner.curves[name]


def relabel(model, manifest: Manifest, threshold: float, splits=None, progress: bool = False,
            cache: dict | None = None) -> dict:
    """Windowed inference over every observed stem: ``{(track, stem): {"probabilities", "labels", "rule"}}``.

    The stem's silent parts are removed first (§4.1, as for training), so silent
    windows do not dilute the average.

    ``cache``: a dict kept between calls to decode each stem once (path -> audio at the model's rate).
    """
    from tqdm import tqdm

    out = {}
    items = [(t, s) for t in manifest.tracks if splits is None or t.split in splits for s in t.observed_stems()]
    for t, s in tqdm(items, desc="relabel", unit="stem", disable=not progress, leave=False):
        path = manifest.resolve(s.path)
        key = (path, model.sample_rate, model.audio_channels)
        x = None if cache is None else cache.get(key)
        if x is None:
            x, _ = load(path, sample_rate=model.sample_rate, channels=model.audio_channels)
            trimmed, _ = remove_silence(x)  # §4.1: the classifier never sees the stem's silent parts
            x = trimmed if trimmed.shape[1] else x
            if cache is not None:
                cache[key] = x
        probs = classify(model, x)
        labels = decide(probs, model.classes, threshold)
        thr = np.broadcast_to(np.asarray(threshold, dtype=float), probs.shape)
        shown = f"{float(thr[0]):g}" if np.all(thr == thr[0]) else "[" + ", ".join(f"{t:.2f}" for t in thr) + "]"
        rule = f"p >= {shown}" if np.any(probs >= thr) else f"top-1 (no class reached {shown})"
        out[(t.id, s.id)] = {"probabilities": {c: round(float(p), 4) for c, p in zip(model.classes, probs)},
                             "labels": labels, "rule": rule}
    return out


@dataclass
class SeparatorConfig:
    model: str = "hdemucs"
    model_kwargs: dict = field(default_factory=lambda: {"channels": 8})
    steps: int = 300
    batch_size: int = 4
    lr: float = 3e-4
    seconds: float = 3.0
    p_multi: float = 0.4
    normalize_lufs: float | None = -14.0
    effects: bool = True
    seed: int = 0
    splits: tuple = ("train", "valid")
    examples_per_epoch: int = 256
    sample_rate: int = 44100
    preload: bool = False


def train_separator(manifest: Manifest, config: SeparatorConfig, view: str = "observed", labels_override=None,
                    progress: bool = False, model=None, runner=None, name: str = "separator", start: str | None = None):
    """A separator trained on random mixtures (§3.2): multi-labelled sources drawn with ``p_multi``,
    their estimates summed in the loss; input (and targets) at −14 LUFS.

    ``view="observed"`` with ``labels_override=None`` trains on the noisy labels,
    with refined labels it trains on those; ``view="clean"`` on the true sources.
    ``model``: continue training this model (fine-tuning; ``start`` names it for the cache key) instead of
    building one. Returns ``(model, constructor kwargs, FitResult)``.
    """
    pool = StemPool.from_manifest(manifest, view=view, splits=config.splits, labels_override=labels_override,
                                  sample_rate=config.sample_rate, progress=progress)
    if config.preload:
        pool.preload()
    mixer = SeparationMixer(pool, seconds=config.seconds, p_multi=config.p_multi,
                            effects=EffectsConfig() if config.effects else None, normalize_lufs=config.normalize_lufs)
    data = MixDataset(mixer, config.examples_per_epoch, seed=config.seed)
    kwargs = {"sources": list(pool.vocab), "sample_rate": config.sample_rate, **config.model_kwargs}
    if model is None:
        torch.manual_seed(config.seed)
        model = build(config.model, **kwargs)
    runner = runner or FitRunner()
    settings = {"config": asdict(config), "view": view, "labels": labels_digest(labels_override), "start": start}
    runner.train(name, model, separator_step, data, config.steps, config.batch_size, config.lr, settings, kwargs,
                 seed=config.seed, progress=progress)
    return model, kwargs, runner.curves[name]


@dataclass
class RefineResult:
    manifest: Manifest
    stats: dict = field(default_factory=dict)
    histories: list = field(default_factory=list)
    decisions: dict = field(default_factory=dict)


def rebased(manifest: Manifest, out: Path) -> Manifest:
    """A copy whose relative paths resolve from ``out``; the input's folder (and the folders it references in
    place) become the copy's ``references_in_place``."""
    d = manifest.to_dict()

    def fix(p):
        if p is None or os.path.isabs(p):
            return p
        return os.path.relpath(manifest.resolve(p), out.resolve())

    if Path(os.path.normpath(manifest.root)) != Path(os.path.normpath(out.resolve())):
        # the copy references the input's files where they lie: say so (weakmir.data.manifest)
        d["references_in_place"] = [os.path.relpath(manifest.root, out.resolve())] + [fix(p) for p in
                                                                                     manifest.references_in_place]
    for t in d["tracks"]:
        t["mixture"], t["score"] = fix(t["mixture"]), fix(t["score"])
        for s in t["stems"]:
            for k in ("path", "clean_path", "notes", "f0"):
                s[k] = fix(s[k])
    return Manifest.from_dict(d, out.resolve(), str(out / "manifest.json"))


def mislabel_scores(manifest: Manifest, decisions: dict) -> dict:
    """Precision/recall of "suspected mislabel" (refined != observed) against "truly mislabelled"
    (observed != true labels), over stems whose true labels are known."""
    tp = fp = fn = n = right_refined = right_observed = multi = 0
    for t in manifest.tracks:
        for s in t.observed_stems():
            key = (t.id, s.id)
            if key not in decisions or s.true_labels is None:
                continue
            refined, observed, true = set(decisions[key]["labels"]), set(s.observed), set(s.true_labels)
            suspected, wrong = refined != observed, true != observed
            tp += suspected and wrong
            fp += suspected and not wrong
            fn += wrong and not suspected
            n += 1
            right_refined += refined == true
            right_observed += observed == true
            multi += len(refined) > 1
    return {"mislabel_precision": tp / (tp + fp) if tp + fp else float("nan"),
            "mislabel_recall": tp / (tp + fn) if tp + fn else float("nan"), "tp": tp, "fp": fp, "fn": fn,
            "labels_exact_refined": right_refined / n if n else float("nan"),
            "labels_exact_observed": right_observed / n if n else float("nan"), "multi_labelled": multi}


def refine_outputs(config: RefineConfig) -> tuple[str, ...]:
    """The files :func:`refine` writes into its output folder (beside its report)."""
    return ("manifest.json", "refine.json", "report.md", "report.html",
            *(f"psi_{it + 1}.ckpt" for it in range(config.iterations)))


def refine(manifest_path, out, config: RefineConfig = RefineConfig(), progress: bool = True,
           overwrite: bool = False) -> RefineResult:
    """The self-refining loop (module docstring); writes ``out/manifest.json``, ``out/psi_<n>.ckpt`` and
    ``out/refine.json``. ``RefineResult.decisions``: ``{(track, stem): {"probabilities", "labels", "rule"}}``.
    ``out`` is checked before any training: the input manifest is never replaced unless ``overwrite``."""
    out = Path(out)
    manifest = Manifest.read(manifest_path)
    if config.iterations < 1:
        raise WeakmirError(f"--iterations {config.iterations}: need at least 1")
    check_output_folder(out, inputs=[manifest.path], writes=refine_outputs(config), overwrite=overwrite)
    overrides, histories, decisions = None, [], {}
    for it in range(config.iterations):
        model, kwargs, hist = train_classifier(manifest, config, labels_override=overrides, single_only=it > 0,
                                               progress=progress)
        histories.append(hist.losses)
        checkpoint.save(out / f"psi_{it + 1}.ckpt", model, kwargs, config=asdict(config))
        decisions = relabel(model, manifest, config.threshold, progress=progress)
        overrides = {k: v["labels"] for k, v in decisions.items()}
    refined = rebased(manifest, out)
    for t in refined.tracks:
        for s in t.observed_stems():
            dec = decisions.get((t.id, s.id))
            if dec is None:
                continue
            s.provenance["refine"] = {"observed": s.observed, **dec, "iterations": config.iterations}
            s.labels = LabelSet.complete(dec["labels"], STEMS4)
    refined.name = f"{manifest.name} (self-refined x{config.iterations})"
    refined.write(out / "manifest.json")
    stats = mislabel_scores(manifest, decisions)
    stats["multi_labelled"] = sum(len(d["labels"]) > 1 for d in decisions.values())
    stats["changed"] = sum(1 for (tid, sid), d in decisions.items()
                           if set(d["labels"]) != set(next(s for s in manifest.track(tid).stems if s.id == sid).observed))
    stats["stems"] = len(decisions)
    atomic_write_text(out / "refine.json", json.dumps({"config": asdict(config), "stats": stats,
                                                       "losses": histories}, indent=1, default=str) + "\n")
    return RefineResult(refined, stats, histories, decisions)


