"""``weakmir experiment self-refine``: Tables 1-3 and Figure 4 of self-refine_koo2023 on the embedded corpus,
and the report of ``weakmir refine``.

The paper's losses, training and relabelling are :mod:`weakmir.methods.self_refine`; this module builds
the noisy pop corpus, trains every classifier and separator on
:class:`weakmir.experiments.stages.StageRunner` (each one kept under ``DIR/checkpoints/``, loaded on
re-run, resumed when killed) and scores them. Presets are YAML recipes
(``recipes/self-refine/{tiny,quick,paper}.yaml``); the quick one runs at 22.05 kHz, 40 × 20 s
tracks, ~13 min on 2 cores; the paper one is the paper's sizes, a GPU job. The module docstring of
:mod:`weakmir.methods.self_refine` says where the recipe differs from the paper, and why.

Checkpoints (``weakmir separate`` runs the separators): ``psi_clean``, ``psi_noisy``, ``psi_refined``
(Table 1); ``separator_<labels>`` for Table 2's five rows; ``ablation_<name>`` for Table 3's.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from ..audio.effects import EffectsConfig
from ..audio.io import load
from ..config import load_recipe
from ..data.labels import STEMS4
from ..data.manifest import Manifest
from ..data.mixing import RandomMixer, StemPool
from ..errors import WeakmirError
from ..files import atomic_write_json, check_output_folder
from ..infer.classify import classify
from ..methods.self_refine import (RefineConfig, SeparatorConfig, mislabel_scores, relabel, train_classifier,
                                   train_separator)
from ..models import check_kwargs
from ..train.engine import global_rank
from .stages import Engine, StageRunner, fingerprint

METHOD = "self-refine"


@dataclass
class ExperimentPreset:
    """Sizes of one run of the experiment (a recipe); ``quick`` fits 2 CPU cores, ``paper`` is the paper's."""

    tracks: int = 40
    seconds: float = 20.0
    sample_rate: int = 44100  # of the corpus; the classifiers and separators run at it too
    noise: tuple = (0.1, 0.1, 0.1)  # bleed, wrong label, merge
    classifier: RefineConfig = field(default_factory=lambda: RefineConfig(
        steps=150, batch_size=8, iterations=1, n_fft=1024, hop_length=256, preload=True, loss="bce"))
    separator: SeparatorConfig = field(default_factory=lambda: SeparatorConfig(
        model="xumx", model_kwargs={"n_fft": 1024, "hop_length": 256, "hidden": 64, "layers": 1},
        steps=200, batch_size=4, seconds=2.0, lr=3e-3, effects=False, preload=True))
    eval_mixes: int = 96
    refine_x: int = 5
    # the same schedule with Hybrid Demucs (``--separator hdemucs``); its CPU size is ~5x slower per step than X-UMX's
    hdemucs: dict = field(default_factory=lambda: {"channels": 8})


def recipe(name: str = "quick", sets=()) -> tuple:
    """``(ExperimentPreset, resolved dict)`` of the recipe ``name`` (a packaged preset or a YAML file) with
    the ``--set`` overrides ``sets``."""
    P, resolved, _ = load_recipe(ExperimentPreset, METHOD, name, sets)
    check_kwargs(P.separator.model, P.separator.model_kwargs, "recipe: separator.model_kwargs")
    return P, resolved


SEPARATORS = ("xumx", "hdemucs")


def separator_config(preset: ExperimentPreset, separator: str = "xumx") -> SeparatorConfig:
    """The Tables 2-3 separator schedule of ``preset`` for ``separator`` (``"xumx"`` or ``"hdemucs"``)."""
    if separator not in SEPARATORS:
        raise WeakmirError(f"unknown separator {separator!r}; use one of {', '.join(SEPARATORS)}")
    S = replace(preset.separator, sample_rate=preset.sample_rate)
    if separator == "hdemucs":  # Demucs' own learning rate and time-domain L1 (separator_step picks the loss)
        S = replace(S, model="hdemucs", model_kwargs=dict(preset.hdemucs), lr=3e-4)
    return S


# -- scoring ------------------------------------------------------------------------------------------------

def classifier_tables(model, manifest: Manifest, n_mixes: int, seed: int, threshold: float = 0.5) -> dict:
    """Table 1: single-label (each clean test stem) and multi-label (random test mixtures, §5.1)."""
    from ..metrics import classification as cl

    y, s = [], []
    for t in manifest.split("test"):
        for stem, path, labels in t.clean_stems():
            x, _ = load(manifest.resolve(path), sample_rate=model.sample_rate, channels=model.audio_channels)
            s.append(classify(model, x))
            y.append([1 if c in labels else 0 for c in model.classes])
    single = cl.evaluate(np.array(y), np.array(s), threshold=threshold, classes=model.classes)
    pool = StemPool.from_manifest(manifest, view="clean", splits=("test",), sample_rate=model.sample_rate,
                                  channels=model.audio_channels)
    mixer = RandomMixer(pool, seconds=2.97, chance=0.5, effects=EffectsConfig())
    ym, sm = [], []
    with torch.no_grad():
        for i in range(n_mixes):
            ex = mixer.sample(np.random.default_rng([seed, 999, i]))
            sm.append(model(torch.from_numpy(ex["mixture"])[None])[0].numpy())
            ym.append(ex["labels"])
    ym, sm = np.array(ym), np.array(sm)
    multi = cl.evaluate(ym, sm, threshold=threshold, classes=model.classes)
    curves = cl.precision_recall_at(ym, sm, np.round(np.arange(0.05, 1.0, 0.05), 2), classes=model.classes)
    return {"single": single, "multi": multi, "pr_curves": curves, "_multi_scores": (ym, sm)}


def sdr_table(model, manifest: Manifest, split: str = "test", labels=STEMS4) -> dict:
    """Table 2 metric: museval SDR (median over frames, median over the ``split`` tracks) per label and
    ``avg`` (mean over labels); a label's reference is the sum of the stems that carry it."""
    from ..evaluate import references
    from ..infer.separate import separate_array
    from ..metrics import separation as sep

    per = {c: [] for c in labels}
    for t in manifest.split(split):
        refs = references(manifest, t, "label")
        mix, _ = load(manifest.resolve(t.mixture), sample_rate=model.sample_rate, channels=model.audio_channels)
        est = separate_array(model, mix, chunk=10 * model.sample_rate, overlap=model.sample_rate,
                             context=model.sample_rate)
        names = [c for c in labels if c in refs and c in model.sources]
        if not names:
            continue
        ref = np.stack([refs[c][:, :mix.shape[1]] for c in names])
        res = sep.evaluate_track(ref, est[[model.sources.index(c) for c in names]][..., :ref.shape[-1]],
                                 model.sample_rate, names=names)
        for c in names:
            per[c].append(res[c]["SDR"])
    table = {c: sep.aggregate(v) for c, v in per.items() if v}
    table["avg"] = float(np.mean([v for v in table.values()])) if table else float("nan")
    return table


def adaptive_thresholds(classes, ym: np.ndarray, sm: np.ndarray) -> list:
    """Per class, the threshold (0.05 ... 0.95) with the best F1 on the test mixtures (Table 3)."""
    from ..metrics import classification as cl

    out = []
    for k, _ in enumerate(classes):
        best = max(np.arange(0.05, 1.0, 0.05), key=lambda th: np.nan_to_num(
            cl.evaluate(ym[:, [k]], sm[:, [k]], threshold=float(th))["per_class"]["0"]["f1"]))
        out.append(float(best))
    return out


# -- the experiment -----------------------------------------------------------------------------------------

def experiment(preset: str, out, progress: bool = True, separator: str = "xumx", sets=(),
               engine: Engine | None = None) -> dict:
    """Re-run Tables 1-3 of self-refine on the embedded noisy pop corpus; writes results.json, metrics.csv,
    report.md / report.html (figures beside) and every model under ``DIR/checkpoints/``.

    ``preset``: a packaged recipe (tiny, quick, paper) or a YAML file; ``sets``: ``key.sub=value`` overrides.
    ``separator``: ``"xumx"`` (CrossNet-Open-Unmix, the preset's size) or ``"hdemucs"`` (Hybrid Demucs v3
    at the preset's ``hdemucs`` size, same steps and batch, learning rate 3e-4 as Demucs uses, time-domain L1).
    Returns the results (None on ranks other than 0 of a distributed run).
    """
    from ..data.synth.build import SynthConfig, build_corpus

    P, resolved = recipe(preset, sets)
    S = separator_config(P, separator)  # checks the name before any work
    out = check_output_folder(out, option="--out")
    t0 = time.perf_counter()
    log = (lambda msg: print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)) if progress else (lambda msg: None)
    bleed, wrong, merge = P.noise
    manifest, _ = build_corpus(out / "corpus", SynthConfig(preset="pop", tracks=P.tracks, seconds=P.seconds,
                                                           sample_rate=P.sample_rate, bleed=bleed, wrong_label=wrong,
                                                           merge=merge), progress=False)
    log(f"corpus: {len(manifest.tracks)} tracks")
    rank0 = global_rank() == 0  # with several processes every rank trains, rank 0 alone scores and writes

    def score(model) -> dict:
        return sdr_table(model, manifest) if rank0 else {"avg": float("nan")}

    runner = StageRunner(out / "checkpoints", {**resolved, "separator_model": separator},
                         fingerprint(out / "corpus" / "manifest.json"), METHOD, log, engine or Engine())
    C = replace(P.classifier, sample_rate=P.sample_rate)
    psi = {}
    psi["clean"], _, _ = train_classifier(manifest, C, view="clean", runner=runner, name="psi_clean")
    psi["noisy"], _, _ = train_classifier(manifest, C, runner=runner, name="psi_noisy")
    cache: dict = {}  # decoded stems, shared by every relabelling pass
    dec = {"noisy": relabel(psi["noisy"], manifest, C.threshold, cache=cache),
           "clean": relabel(psi["clean"], manifest, C.threshold, cache=cache)}
    over = {k: {kk: v["labels"] for kk, v in d.items()} for k, d in dec.items()}
    psi["refined"], _, _ = train_classifier(manifest, C, labels_override=over["noisy"], single_only=True,
                                            runner=runner, name="psi_refined")
    dec["refined"] = relabel(psi["refined"], manifest, C.threshold, cache=cache)
    over["refined"] = {k: v["labels"] for k, v in dec["refined"].items()}
    log("Psi_refined trained, stems relabelled")
    table1 = {k: classifier_tables(m, manifest, P.eval_mixes, C.seed) for k, m in psi.items()}

    sep_runs = {"clean": dict(view="clean"), "noisy": dict(), "psi_clean": dict(labels_override=over["clean"]),
                "psi_noisy": dict(labels_override=over["noisy"]), "psi_refined": dict(labels_override=over["refined"])}
    table2 = {}
    for name, kw in sep_runs.items():
        model, _, _ = train_separator(manifest, S, runner=runner, name=f"separator {name}", **kw)
        table2[name] = score(model)
        log(f"separator on {name} labels: SDR avg {table2[name]['avg']:.2f} dB")

    # ablations (Table 3)
    ym, sm = table1["refined"]["_multi_scores"]
    adaptive = adaptive_thresholds(psi["refined"].classes, ym, sm)
    abl = {
        "threshold_0.5": {kk: v["labels"] for kk, v in relabel(psi["refined"], manifest, 0.5, cache=cache).items()},
        "adaptive_thresholds": {kk: v["labels"] for kk, v in relabel(psi["refined"], manifest, adaptive, cache=cache).items()},
    }
    table3 = {"proposed": table2["psi_refined"]}

    def ablation(name, labels, cfg=S, **kw):
        """Train and score one ablation; a labelling that leaves nothing to train on is recorded, not fatal."""
        try:
            model, _, _ = train_separator(manifest, cfg, labels_override=labels, runner=runner,
                                          name=f"ablation {name}", **kw)
        except WeakmirError as e:
            table3[name] = {"avg": float("nan"), "error": str(e)}
            log(f"ablation {name}: not trainable ({e})")
            return None
        table3[name] = score(model)
        log(f"ablation {name}: SDR avg {table3[name]['avg']:.2f} dB")
        return model

    for name, labels in abl.items():
        ablation(name, labels)
    single_cfg = SeparatorConfig(**{**asdict(S), "p_multi": 0.0})
    model = ablation("single_labelled_only", over["refined"], single_cfg)
    if model is not None:  # + fine-tune with multi-labelled sources: half the steps, no effects, a new seed
        ft = SeparatorConfig(**{**asdict(S), "steps": max(1, S.steps // 2), "seed": S.seed + 1, "effects": False})
        ablation("finetune_multi_labelled", over["refined"], ft, model=model, start="ablation single_labelled_only")
    else:
        table3["finetune_multi_labelled"] = {"avg": float("nan"), "error": "single-labelled training failed"}
    log("ablations single-only and fine-tune done")
    labels_x = over["refined"]
    for k in range(P.refine_x - 2):
        m_x, _, _ = train_classifier(manifest, C, labels_override=labels_x, single_only=True, runner=runner,
                                     name=f"psi_refined_x{k + 3}")
        labels_x = {kk: v["labels"] for kk, v in relabel(m_x, manifest, C.threshold, cache=cache).items()}
    ablation(f"self_refining_x{P.refine_x}", labels_x)

    if not rank0:
        return None
    clean, noisy, refined = table2["clean"]["avg"], table2["noisy"]["avg"], table2["psi_refined"]["avg"]
    label_quality = {k: mislabel_scores(manifest, d) for k, d in dec.items()}
    mis = label_quality["refined"]
    summary = {
        "sdr_clean": clean, "sdr_noisy": noisy, "sdr_refined": refined,
        "gap_closed": (refined - noisy) / (clean - noisy) if clean != noisy else float("nan"),
        "acc_multi_clean": table1["clean"]["multi"]["overall"]["accuracy"],
        "acc_multi_noisy": table1["noisy"]["multi"]["overall"]["accuracy"],
        "acc_multi_refined": table1["refined"]["multi"]["overall"]["accuracy"],
        "mislabel_precision": mis["mislabel_precision"], "mislabel_recall": mis["mislabel_recall"],
        "seconds": time.perf_counter() - t0, "preset": preset, "separator": separator,
    }
    for v in table1.values():
        v.pop("_multi_scores")
    curves = runner.loss_curves()
    results = {"summary": summary, "recipe": resolved, "table1": table1, "table2": table2, "table3": table3,
               "adaptive_thresholds": dict(zip(psi["refined"].classes, adaptive)), "relabelling": label_quality,
               "learning_curves": {"classifier": {k: curves[f"psi_{k}"] for k in ("clean", "noisy", "refined")},
                                   "separator": {k: curves[f"separator {k}"] for k in sep_runs}}}
    atomic_write_json(out / "results.json", results)
    runner.write_metrics(out / "metrics.csv")
    experiment_page(results).write(out)
    log(f"done: {out / 'results.json'}")
    return results


# -- reports -----------------------------------------------------------------------------------------------

def experiment_page(r: dict):
    """The experiment's report: the summary, Tables 1-3, Figure 4 and the learning curves."""
    from ..report.figures import learning_curves, pr_curves
    from ..report.page import Page

    s = r["summary"]
    page = Page(f"Self-refine experiment ({s['preset']} preset, {s.get('separator', 'xumx')} separator)",
                f"SDR avg: clean {s['sdr_clean']:.2f}, noisy {s['sdr_noisy']:.2f}, refined {s['sdr_refined']:.2f} dB; "
                f"gap closed {s['gap_closed']:.0%} (paper: 64 % Demucs, 81 % X-UMX). Multi-label accuracy: clean "
                f"{s['acc_multi_clean']:.3f}, noisy {s['acc_multi_noisy']:.3f}, refined {s['acc_multi_refined']:.3f}. "
                f"Suspected mislabels: precision {s['mislabel_precision']:.3f}, recall {s['mislabel_recall']:.3f}. "
                f"Run time {s['seconds'] / 60:.1f} min.")

    def cell(d):
        return f"{d['accuracy']:.3f} / {d['f1']:.3f} / {d['precision']:.2f} / {d['recall']:.2f}"

    rows = []
    for name, t in r["table1"].items():
        for kind in ("single", "multi"):
            pc, o = t[kind]["per_class"], t[kind]["overall"]
            rows.append([name, kind, *[cell(pc[c]) for c in STEMS4], cell(o)])
    page.section("Table 1: instrument recognition (accuracy / F1 / precision / recall, threshold 0.5)").table(
        ["training labels", "kind", *STEMS4, "avg"], rows)
    for title, key in (("Table 2: separation SDR (dB, median of frames, median of test tracks)", "table2"),
                       ("Table 3: ablations (same separator)", "table3")):
        page.section(title).table(["training labels", *STEMS4, "avg"],
                                  [[name, *[t.get(c, float("nan")) for c in STEMS4], t["avg"]] for name, t in r[key].items()])
    fig4 = page.section("Figure 4: precision / recall of Ψ over thresholds (test mixtures)")
    curves = r["table1"]["refined"]["pr_curves"]
    fig4.table(["threshold", *[f"{c} P / R" for c in STEMS4]],
               [[f"{pt['threshold']:.2f}", *[f"{curves[c][i]['precision']:.2f} / {curves[c][i]['recall']:.2f}"
                                             for c in STEMS4]] for i, pt in enumerate(curves[STEMS4[0]])])
    for name, t in r["table1"].items():
        fig4.figure(pr_curves(t["pr_curves"], f"Ψ trained on {name} labels"), f"Ψ_{name}: precision and recall "
                    "against the threshold, per class", f"pr-{name}")
    lc = page.section("Learning curves", "Training loss of every classifier and separator, by the labels it was "
                      "trained on (the raw loss faint, a moving average over it).")
    for who, ylabel in (("classifier", "classifier loss (BCE or MAE)"), ("separator", "separation loss")):
        lc.figure(learning_curves(r["learning_curves"][who], f"{who}s: training loss", ylabel),
                  f"{who} learning curves", f"curves-{who}")
    return page


def _suspects(manifest: Manifest, decisions: dict) -> list:
    rows = []
    for t in manifest.tracks:
        for s in t.observed_stems():
            d = decisions.get((t.id, s.id))
            if d is None or set(d["labels"]) == set(s.observed):
                continue
            rows.append((max(d["probabilities"][c] for c in d["labels"]), t, s, d))
    return sorted(rows, key=lambda r: -r[0])


def refine_page(manifest: Manifest, decisions: dict, stats: dict, thumbnails: int = 12):
    """The report of ``weakmir refine``: suspected mislabels, most confident first, and spectrograms of the
    ``thumbnails`` most confident ones."""
    from ..audio.spectral import db, magnitude
    from ..report.figures import spectrogram
    from ..report.page import Page

    suspects = _suspects(manifest, decisions)
    page = Page("Self-refine: suspected mislabels",
                f"{len(suspects)} of {stats['stems']} stems relabelled; {stats['multi_labelled']} now multi-labelled. "
                f"Against true labels (where known): precision {stats['mislabel_precision']:.3f}, recall "
                f"{stats['mislabel_recall']:.3f}.")
    rows = []
    for conf, t, s, d in suspects:
        truth = ", ".join(s.true_labels) if s.true_labels is not None else "?"
        probs = " ".join(f"{c} {p:.2f}" for c, p in d["probabilities"].items())
        rows.append([t.id, s.id, ", ".join(s.observed), ", ".join(d["labels"]), truth, probs, d["rule"]])
    page.section("Suspected mislabels (refined labels differ from the observed ones)").table(
        ["track", "stem", "observed", "refined", "true", "probabilities", "rule"], rows)
    if suspects and thumbnails:
        sec = page.section(f"Spectrograms of the {min(thumbnails, len(suspects))} most confident suspects",
                           "Magnitude (dB) of the stem's channel mean, first 30 s, n_fft 2048, hop 512.")
        for conf, t, s, d in suspects[:thumbnails]:
            x, sr = load(manifest.resolve(s.path))
            x = x[:, : 30 * sr].mean(axis=0)
            m = db(magnitude(torch.from_numpy(np.ascontiguousarray(x)), 2048, 512).numpy())
            top = float(m.max())
            title = f"{t.id} / {s.id}: {', '.join(s.observed)} -> {', '.join(d['labels'])}"
            sec.figure(spectrogram(m, sr, 512, title, "magnitude (dB)", vmin=top - 80, vmax=top, fmax=min(sr / 2, 11025)),
                       f"{title} (p {conf:.2f})", f"{t.id}-{s.id}")
    return page


def refine_and_report(manifest_path, out, config: RefineConfig, progress: bool = True, overwrite: bool = False):
    """``weakmir refine``: :func:`weakmir.methods.self_refine.refine`, then ``out/report.md`` /
    ``out/report.html`` (figures beside)."""
    from ..methods.self_refine import refine

    res = refine(manifest_path, out, config, progress=progress, overwrite=overwrite)
    refine_page(Manifest.read(manifest_path), res.decisions, res.stats).write(out)
    return res


__all__ = ["ExperimentPreset", "recipe", "separator_config", "SEPARATORS", "classifier_tables", "sdr_table",
           "adaptive_thresholds", "experiment", "experiment_page", "refine_page", "refine_and_report"]
