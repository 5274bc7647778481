"""Self-refining of pseudo labels (Koo, Chae, Jeon, Lee — ISMIR 2023).

What is here (issue 4, in progress):

* :func:`classifier_loss` — L_Ψ, mean absolute error between the classifier's
  sigmoid outputs and the multi-hot labels of a random mixture (§3.1; the paper
  found no difference to BCE). Missing labels can be masked.
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
  new labels and the rule that decided them) and a report of suspected
  mislabels sorted by confidence.

Differences from the paper: the classifier defaults to the CPU ``small``
ConvNeXt and a few hundred steps (``preset="tiny"`` and longer schedules give the
paper's setting); when no class reaches the threshold the top class is kept (a
stem always has a label; the paper does not say what it does then).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..audio.effects import EffectsConfig
from ..audio.io import load
from ..data.labels import STEMS4, LabelSet
from ..data.manifest import Manifest
from ..data.mixing import MixDataset, RandomMixer, StemPool
from ..data.targets import group_estimates
from ..errors import WeakmirError
from ..files import atomic_write_text
from ..infer.classify import classify, decide
from ..models import build
from ..train import checkpoint
from ..train.engine import fit


# -- losses ------------------------------------------------------------------------------

def classifier_loss(probs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """L_Ψ: mean absolute error over known labels.

    Shape: probs, targets, mask ``(batch, classes)`` -> scalar.
    """
    if probs.shape != targets.shape or (mask is not None and mask.shape != probs.shape):
        raise ValueError(f"probs {tuple(probs.shape)}, targets {tuple(targets.shape)}"
                         f"{'' if mask is None else f', mask {tuple(mask.shape)}'} must have one shape")
    err = (probs - targets).abs()
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


def classifier_step(model, batch):
    probs = model(batch["mixture"])
    loss = classifier_loss(probs, batch["labels"])
    return loss, {"loss": loss.detach()}


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


def train_classifier(manifest: Manifest, config: RefineConfig, labels_override=None, single_only: bool = False,
                     progress: bool = False):
    """Ψ on random mixtures of the manifest's observed stems (or ``labels_override``)."""
    pool = StemPool.from_manifest(manifest, view="observed", splits=config.splits, labels_override=labels_override,
                                  progress=progress)
    mixer = RandomMixer(pool, seconds=2.97, chance=config.chance,
                        effects=EffectsConfig() if config.effects else None, single_only=single_only)
    data = MixDataset(mixer, config.examples_per_epoch, seed=config.seed)
    torch.manual_seed(config.seed)
    kwargs = {"preset": config.preset, "classes": list(pool.vocab), "log_magnitude": config.log_magnitude}
    model = build("convnext", **kwargs)
    history = fit(model, classifier_step, data, max_steps=config.steps, batch_size=config.batch_size, lr=config.lr,
                  seed=config.seed, progress=progress)
    return model, kwargs, history


def relabel(model, manifest: Manifest, threshold: float, splits=None, progress: bool = False) -> dict:
    """Windowed inference over every observed stem: ``{(track, stem): {"probabilities", "labels", "rule"}}``."""
    from tqdm import tqdm

    out = {}
    items = [(t, s) for t in manifest.tracks if splits is None or t.split in splits for s in t.observed_stems()]
    for t, s in tqdm(items, desc="relabel", unit="stem", disable=not progress, leave=False):
        x, _ = load(manifest.resolve(s.path), sample_rate=model.sample_rate, channels=model.audio_channels)
        probs = classify(model, x)
        labels = decide(probs, model.classes, threshold)
        rule = f"p >= {threshold}" if max(probs) >= threshold else f"top-1 (no class reached {threshold})"
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


def train_separator(manifest: Manifest, config: SeparatorConfig, view: str = "observed", labels_override=None,
                    progress: bool = False):
    """A separator trained on random mixtures (§3.2): multi-labelled sources drawn with ``p_multi``,
    their estimates summed in the loss; input (and targets) at −14 LUFS.

    ``view="observed"`` with ``labels_override=None`` trains on the noisy labels,
    with refined labels it trains on those; ``view="clean"`` on the true sources.
    """
    from ..data.mixing import SeparationMixer

    pool = StemPool.from_manifest(manifest, view=view, splits=config.splits, labels_override=labels_override,
                                  progress=progress)
    mixer = SeparationMixer(pool, seconds=config.seconds, p_multi=config.p_multi,
                            effects=EffectsConfig() if config.effects else None, normalize_lufs=config.normalize_lufs)
    data = MixDataset(mixer, config.examples_per_epoch, seed=config.seed)
    torch.manual_seed(config.seed)
    kwargs = {"sources": list(pool.vocab), **config.model_kwargs}
    model = build(config.model, **kwargs)
    history = fit(model, separator_step, data, max_steps=config.steps, batch_size=config.batch_size, lr=config.lr,
                  seed=config.seed, progress=progress)
    return model, kwargs, history


@dataclass
class RefineResult:
    manifest: Manifest
    stats: dict = field(default_factory=dict)
    histories: list = field(default_factory=list)


def _rebased(manifest: Manifest, out: Path) -> Manifest:
    """A copy whose relative paths resolve from ``out``."""
    d = manifest.to_dict()

    def fix(p):
        if p is None or os.path.isabs(p):
            return p
        return os.path.relpath(manifest.resolve(p), out.resolve())

    for t in d["tracks"]:
        t["mixture"], t["score"] = fix(t["mixture"]), fix(t["score"])
        for s in t["stems"]:
            for k in ("path", "clean_path", "notes", "f0"):
                s[k] = fix(s[k])
    return Manifest.from_dict(d, out.resolve(), str(out / "manifest.json"))


def mislabel_scores(manifest: Manifest, decisions: dict) -> dict:
    """Precision/recall of "suspected mislabel" (refined != observed) against "truly mislabelled"
    (observed != true labels), over stems whose true labels are known."""
    tp = fp = fn = 0
    for t in manifest.tracks:
        for s in t.observed_stems():
            key = (t.id, s.id)
            if key not in decisions or s.true_labels is None:
                continue
            suspected = set(decisions[key]["labels"]) != set(s.observed)
            wrong = set(s.true_labels) != set(s.observed)
            tp += suspected and wrong
            fp += suspected and not wrong
            fn += wrong and not suspected
    return {"mislabel_precision": tp / (tp + fp) if tp + fp else float("nan"),
            "mislabel_recall": tp / (tp + fn) if tp + fn else float("nan"), "tp": tp, "fp": fp, "fn": fn}


def refine(manifest_path, out, config: RefineConfig = RefineConfig(), progress: bool = True) -> RefineResult:
    """The self-refining loop (module docstring); writes ``out/manifest.json``, ``out/report.md``,
    ``out/psi_<n>.ckpt`` and ``out/refine.json``."""
    out = Path(out)
    manifest = Manifest.read(manifest_path)
    if config.iterations < 1:
        raise WeakmirError(f"--iterations {config.iterations}: need at least 1")
    overrides, histories, decisions = None, [], {}
    for it in range(config.iterations):
        model, kwargs, hist = train_classifier(manifest, config, labels_override=overrides, single_only=it > 0,
                                               progress=progress)
        histories.append(hist.losses)
        checkpoint.save(out / f"psi_{it + 1}.ckpt", model, kwargs, config=asdict(config))
        decisions = relabel(model, manifest, config.threshold, progress=progress)
        overrides = {k: v["labels"] for k, v in decisions.items()}
    refined = _rebased(manifest, out)
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
    atomic_write_text(out / "report.md", report(manifest, decisions, stats))
    atomic_write_text(out / "report.html", report_html(manifest, decisions, stats))
    return RefineResult(refined, stats, histories)


def _suspects(manifest: Manifest, decisions: dict) -> list:
    rows = []
    for t in manifest.tracks:
        for s in t.observed_stems():
            d = decisions.get((t.id, s.id))
            if d is None or set(d["labels"]) == set(s.observed):
                continue
            rows.append((max(d["probabilities"][c] for c in d["labels"]), t, s, d))
    return sorted(rows, key=lambda r: -r[0])


def report_html(manifest: Manifest, decisions: dict, stats: dict, max_rows: int = 200) -> str:
    """HTML page of suspected mislabels with a spectrogram thumbnail of each stem, most confident first."""
    import html

    from ..report.images import data_uri, png_bytes, spectrogram_image

    rows = []
    for conf, t, s, d in _suspects(manifest, decisions)[:max_rows]:
        x, sr = load(manifest.resolve(s.path))
        img = data_uri(png_bytes(spectrogram_image(x, sr)))
        probs = "<br>".join(f"{html.escape(c)} {p:.2f}" for c, p in d["probabilities"].items())
        truth = ", ".join(s.true_labels) if s.true_labels is not None else "?"
        rows.append(f"<tr><td>{html.escape(t.id)}</td><td>{html.escape(s.id)}</td><td>{', '.join(s.observed)}</td>"
                    f"<td><b>{', '.join(d['labels'])}</b></td><td>{truth}</td><td>{probs}</td>"
                    f"<td>{html.escape(d['rule'])}</td><td><img src=\"{img}\" width=240 height=80></td></tr>")
    head = ("<tr><th>track</th><th>stem</th><th>observed</th><th>refined</th><th>true</th><th>probabilities</th>"
            "<th>rule</th><th>spectrogram (log frequency, first 30 s)</th></tr>")
    summary = (f"{len(_suspects(manifest, decisions))} of {stats['stems']} stems relabelled; {stats['multi_labelled']} "
               f"multi-labelled. Suspected-mislabel precision {stats['mislabel_precision']:.3f}, "
               f"recall {stats['mislabel_recall']:.3f} (against true labels where known).")
    return ("<!doctype html><meta charset=utf-8><title>weakmir refine report</title>"
            "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
            "table{border-collapse:collapse}</style>"
            f"<h1>Self-refine: suspected mislabels</h1><p>{summary}</p><table>{head}{''.join(rows)}</table>\n")


def report(manifest: Manifest, decisions: dict, stats: dict) -> str:
    """Markdown page of suspected mislabels, most confident first."""
    rows = []
    for t in manifest.tracks:
        for s in t.observed_stems():
            d = decisions.get((t.id, s.id))
            if d is None or set(d["labels"]) == set(s.observed):
                continue
            conf = max(d["probabilities"][c] for c in d["labels"])
            truth = ", ".join(s.true_labels) if s.true_labels is not None else "?"
            probs = " ".join(f"{c} {p:.2f}" for c, p in d["probabilities"].items())
            rows.append((conf, f"| {t.id} | {s.id} | {', '.join(s.observed)} | {', '.join(d['labels'])} | {truth} "
                               f"| {probs} | {d['rule']} |"))
    rows.sort(key=lambda r: -r[0])
    md = ["# Self-refine: suspected mislabels\n",
          f"{len(rows)} of {stats['stems']} stems relabelled; {stats['multi_labelled']} now multi-labelled.",
          f"Against true labels (where known): precision {stats['mislabel_precision']:.3f}, "
          f"recall {stats['mislabel_recall']:.3f}.\n",
          "| track | stem | observed | refined | true | probabilities | rule |", "|---|---|---|---|---|---|---|"]
    return "\n".join(md + [r for _, r in rows]) + "\n"
