"""``weakmir train METHOD MANIFEST -o RUN``: a method's training stages on the user's own manifest.

The same stages as the paper experiments (:mod:`weakmir.experiments.self_refine`,
:mod:`weakmir.experiments.score_supervised`), on the same stage runner (cache, resume, workers,
checkpoints every N steps), from the same recipes, on any manifest:

* ``self-refine``: a separator (X-UMX or Hybrid Demucs, the recipe's ``separator`` section) trained on
  the manifest's stem labels with §3.2's multi-label grouping (a stem carrying several labels is the
  target of the sum of their estimates) and −14 LUFS inputs. Give it a manifest written by
  ``weakmir refine`` to train on refined labels, or any other to train on the labels it has.
  ``RUN/checkpoints/separator.ckpt``.
* ``score-supervised``: step 1 (the transcriptor on mixtures and scores), step 2 (a separator against it,
  c-mix + h-mix), step 3 (both jointly, + AML + ATL as the recipe's α3 / β3 say), and the supervised
  upper bound on the stems; any manifest whose stems have notes (``synth``, ``dataset slakh``,
  ``dataset bach10 --notes score``, the user's own). ``RUN/checkpoints/transcriptor_step_1.ckpt``,
  ``isolated_c-mix+h-mix.ckpt``, ``<step 3>.ckpt`` with ``<step 3>_transcriptor.ckpt``, ``supervised.ckpt``.
* ``weak-mic``: one instrument tagger (``model``: att, fc_t, fc, rnn, rf, mt, dgm; the recipe's ``tag``
  section and its ``mt_epochs`` / ``dgm_epochs``) on the clips' observed tags, selected on the valid split
  (without one, the 15 % of train whose ids hash lowest, as :mod:`weakmir.data.sources.openmic` picks it);
  features from the manifest (``features`` files) or from the mixtures through the frozen embedding network
  (the recipe's ``embedding.checkpoint``, else pretrained on a synth corpus of its own in ``RUN/corpus``).
  ``RUN/checkpoints/<model>.ckpt`` (for ``weakmir tag``), ``embedding.ckpt``.
* ``majl``: one or more manifests; each track's labelling (``full``: voice stem + f0, ``stems``: voice stem
  only, ``pitch``: mixture + f0 only; the manifest's ``labelling`` or what the track has,
  :mod:`weakmir.data.voice`) decides what it trains. The pipeline (MSS and PE apart), naive joint
  learning and MAJL-Stage I train on the ``full`` training tracks; MAJL Stage II from scratch on those plus
  the single-labelled ones, pseudo-labelled by Stage I (the recipe's ``th``), when there are any. With
  ``settings="synth"`` (the default) the modules are the recipe's first ``combos`` and the rows train as its
  ``train`` / ``stage2`` say (chosen on the synth corpus); with ``"mir1k"`` (for real singing) as its ``mir1k``
  section says — ``combo``, ``modules``, ``train``, ``stage2``, ``th`` (chosen on MIR-1K's held-out training
  clips) and ``shifts``: the fully labelled training tracks and one tape-speed copy of each per value
  (:func:`weakmir.experiments.majl.with_shifts`; the quick recipe's −7 semitones). Its ``extra`` and
  ``synth_extra`` do not apply: the single-labelled tracks are the manifests'. Scored on the fully labelled tracks of split test (else
  valid): SDR, GNSDR, RPA, RCA. ``RUN/checkpoints/{pipeline_mss,pipeline_pe,pipeline,naive,stage1,majl}.ckpt``
  (``pipeline``, ``naive``, ``stage1``, ``majl``: ``weakmir pitch`` reads them, and ``pipeline_pe``;
  ``weakmir separate`` reads their voice and ``pipeline_mss``).

The manifest is checked for the method before any work. Writes ``RUN/results.json`` (``summary``, the
resolved ``recipe``, the tables on the manifest's ``test`` split, else ``valid``), ``RUN/metrics.csv``
(the logged losses of every stage), ``RUN/report.md`` / ``RUN/report.html``. The same command again
loads what is trained and resumes a stage that was killed. With several processes (``--devices``,
``--num-nodes``) every rank trains and rank 0 alone writes.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from ..data.manifest import Manifest
from ..data.scores import ScoreClips, manifest_instruments
from ..errors import WeakmirError
from ..files import atomic_write_json, check_output_folder
from ..methods.score_supervised import Stages
from ..train.engine import global_rank
from .score_supervised import stages_for
from .stages import Engine, StageRunner, fingerprint, run_tasks

METHODS = ("self-refine", "score-supervised", "weak-mic", "majl")


def _eval_split(manifest: Manifest, usable) -> str | None:
    """``test`` when it has usable tracks, else ``valid``, else None."""
    for split in ("test", "valid"):
        if any(usable(t) for t in manifest.split(split)):
            return split
    return None


RUN_FILES = ("results.json", "metrics.csv", "report.md", "report.html")  # what a run writes at its top


def check_manifest(method: str, manifest: Manifest) -> dict:
    """What ``method`` will train on and score, or a one-line error naming the manifest and the fix.

    Returns ``{"eval_split": "test" | "valid" | None, ...}``.
    """
    where = manifest.path or "manifest"
    if method not in METHODS:
        raise WeakmirError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if not manifest.split("train"):
        splits = sorted({t.split for t in manifest.tracks})
        raise WeakmirError(f"{where}: no track in split train (splits: {', '.join(splits)}); give some tracks "
                           "split \"train\"")
    if method == "weak-mic":
        tagged = [t for t in manifest.split("train") if t.tags is not None and (t.tags.present or t.tags.absent)]
        if not tagged:
            raise WeakmirError(f"{where}: no track in split train has an observed tag; weak-mic trains on clip tags "
                               "(weakmir synth --preset openmic and weakmir dataset openmic write them)")
        for t in manifest.tracks:
            if t.features is None and t.mixture is None:
                raise WeakmirError(f"{where}: track {t.id} has neither features nor a mixture; weak-mic tags one of "
                                   "them: add the clip's audio or its features (.npy)")
        split = _eval_split(manifest, lambda t: t.tags is not None or t.true_tags is not None)
        return {"eval_split": split, "clips": len(tagged), "valid": bool(manifest.split("valid"))}
    if method == "majl":
        from ..data.voice import check, labelling

        counts = check(manifest, where)
        full = [t for t in manifest.split("train") if labelling(t) == "full"]
        split = _eval_split(manifest, lambda t: labelling(t) == "full")
        return {"eval_split": split, "labellings": counts, "full_train": len(full)}
    if method == "self-refine":
        labelled = [s for t in manifest.split("train") for s in t.observed_stems() if s.observed]
        if not labelled:
            raise WeakmirError(f"{where}: no stem in split train has a label; self-refine trains its separator on "
                               "labelled stems (weakmir refine writes them, weakmir dataset reads them)")
        split = _eval_split(manifest, lambda t: t.mixture is not None and t.observed_stems())
        return {"eval_split": split, "stems": len(labelled)}
    scored = [t for t in manifest.split("train") if any(s.notes for s in t.stems)]
    if not scored:
        raise WeakmirError(f"{where}: no track in split train has a score; score-supervised needs notes per stem "
                           "(weakmir synth, weakmir dataset slakh or weakmir dataset bach10 --notes score write them)")
    for t in scored:
        if t.mixture is None:
            raise WeakmirError(f"{where}: track {t.id} has no mixture; score-supervised trains on mixtures and "
                               "their scores: add the mixture audio")
    valid = any(t.mixture is not None and any(s.notes for s in t.stems) for t in manifest.split("valid"))
    split = _eval_split(manifest, lambda t: t.mixture is not None and any(s.notes for s in t.stems))
    return {"eval_split": split, "tracks": len(scored), "valid": valid, "instruments": manifest_instruments(manifest)}


MAJL_SETTINGS = ("synth", "mir1k")  # which of a majl recipe's sections trains `train majl`'s rows


def train(method: str, manifest_path, out, recipe: str = "quick", sets=(), engine: Engine | None = None,
          progress: bool = True, overwrite: bool = False, model: str = "att", settings: str = "synth") -> dict | None:
    """Train ``method`` on the manifest at ``manifest_path`` into ``out`` (module docstring); returns the
    results (None on ranks other than 0). ``out`` is checked first (:func:`weakmir.files.check_output_folder`:
    a run never replaces its input manifest unless ``overwrite``). ``settings`` (majl only, one of
    :data:`MAJL_SETTINGS`): the recipe's top-level settings or its ``mir1k`` section."""
    if method not in METHODS:
        raise WeakmirError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if method == "majl":
        return _majl(manifest_path if isinstance(manifest_path, (list, tuple)) else [manifest_path], out, recipe,
                     sets, engine, progress, overwrite, settings)
    manifest = Manifest.read(manifest_path)
    check_output_folder(out, inputs=[manifest.path], writes=RUN_FILES, overwrite=overwrite, option="--out")
    engine = engine or Engine(progress=progress)
    out = Path(out)
    t0 = time.perf_counter()
    log = (lambda msg: print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)) if progress else (lambda msg: None)
    if method == "self-refine":
        return _self_refine(manifest, out, recipe, sets, engine, log, t0)
    if method == "weak-mic":
        return _weak_mic(manifest, out, recipe, sets, engine, log, t0, progress, model)
    return _score_supervised(manifest, out, recipe, sets, engine, log, t0, progress)


def _summary_of(curves: dict) -> dict:
    import numpy as np

    return {name: {"steps": h.steps or len(h.losses), "loss_first": float(np.mean(h.losses[:10])) if h.losses else None,
                   "loss_last": float(np.mean(h.losses[-10:])) if h.losses else None} for name, h in curves.items()}


# -- self-refine ------------------------------------------------------------------------------------------

def _self_refine(manifest: Manifest, out: Path, recipe: str, sets, engine: Engine, log, t0) -> dict | None:
    from ..experiments.self_refine import recipe as load_recipe
    from ..experiments.self_refine import sdr_table
    from ..methods.self_refine import train_separator

    P, resolved = load_recipe(recipe, sets)
    info = check_manifest("self-refine", manifest)
    S = replace(P.separator, sample_rate=P.sample_rate)
    runner = StageRunner(out / "checkpoints", {"method": "self-refine", "separator": resolved["separator"],
                                               "sample_rate": P.sample_rate}, fingerprint(manifest.path),
                         "self-refine", log, engine)
    log(f"{manifest.path}: {info['stems']} labelled stems in split train; separator {S.model}, {S.steps} steps")
    model, kwargs, hist = train_separator(manifest, S, runner=runner, name="separator", progress=engine.progress)
    if global_rank() != 0:
        return None
    table = sdr_table(model, manifest, info["eval_split"], labels=model.sources) if info["eval_split"] else {}
    if table:
        log(f"SDR on split {info['eval_split']}: avg {table['avg']:.2f} dB")
    summary = {"method": "self-refine", "manifest": str(manifest.path), "eval_split": info["eval_split"],
               "sdr_avg": table.get("avg"), "sources": list(model.sources), "stages": _summary_of(runner.curves),
               "seconds": time.perf_counter() - t0}
    results = {"summary": summary, "recipe": resolved, "sdr": table, "learning_curves": runner.loss_curves()}
    _write(out, results, runner, _self_refine_page(results))
    return results


def _self_refine_page(r: dict):
    from ..report.figures import learning_curves
    from ..report.page import Page

    s = r["summary"]
    page = Page("weakmir train self-refine", f"Separator trained on the labels of {s['manifest']} "
                f"({', '.join(s['sources'])}); {s['stages']['separator']['steps']} steps in {s['seconds'] / 60:.1f} min.")
    if r["sdr"]:
        names = [k for k in r["sdr"] if k != "avg"]
        page.section(f"SDR (dB, museval: median of frames, median of the {s['eval_split']} tracks)").table(
            ["separator", *names, "avg"], [["separator", *[r["sdr"][k] for k in names], r["sdr"]["avg"]]])
    else:
        page.section("Scores", "The manifest has no test or valid track with a mixture: nothing was scored.")
    page.section("Learning curve").figure(learning_curves(r["learning_curves"], "separator: training loss",
                                                          "separation loss"), "separator learning curve", "curve")
    return page


# -- score-supervised ---------------------------------------------------------------------------------------

def _score_data(manifest: Manifest, P, has_valid: bool):
    from ..methods.score_supervised import data_weights

    C = P.train
    train = ScoreClips.from_manifest(manifest, C.instruments, ("train",), C.sample_rate, C.hop_length, C.seconds,
                                     C.examples_per_epoch, C.seed)
    valid = (ScoreClips.from_manifest(manifest, train.instruments, ("valid",), C.sample_rate, C.hop_length, C.seconds,
                                      P.valid_clips, C.seed + 100) if has_valid else None)
    rates, weights = data_weights(train, C.class_weights)
    return train, valid, rates, weights


def _score_models(st, P) -> dict:
    """Every stage of ``weakmir train score-supervised``: ``{"transcriptors": ..., "separators": ...}``."""
    C = P.train
    tr1 = st.transcriptor(C.steps[0])
    sep2 = st.isolated("c-mix + h-mix", tr1, C.steps[1])
    setup = Stages.step3_setup(C)
    tr3, sep3 = st.fine_tune(setup, tr1, "c-mix + h-mix", sep2, C.steps[2])
    sup = st.supervised(P.supervised_steps)
    return {"transcriptors": {"step 1": tr1, f"step 3 ({setup})": tr3},
            "separators": {"step 2 (c-mix + h-mix)": sep2, f"step 3 ({setup})": sep3, "supervised": sup}}


_TRAIN_TASKS: dict = {}


def _score_task(task: str, resolved: dict, manifest_path: str, out: str, has_valid: bool, progress: bool) -> None:
    """One stage of ``weakmir train score-supervised`` in a worker process (:func:`run_tasks`)."""
    from ..config import from_dict
    from .score_supervised import ScorePreset

    P = from_dict(ScorePreset, resolved)
    key = (manifest_path, out)
    if key not in _TRAIN_TASKS:
        manifest = Manifest.read(manifest_path)
        train, valid, _, weights = _score_data(manifest, P, has_valid)
        runner = StageRunner(Path(out) / "checkpoints", resolved, fingerprint(manifest_path), "score-supervised",
                             (lambda msg: print(f"[worker {os.getpid()}] {msg}", flush=True)) if progress
                             else (lambda msg: None))
        _TRAIN_TASKS[key] = stages_for(runner, P, train, valid, weights)
    st, C = _TRAIN_TASKS[key], P.train
    if task == "supervised":
        st.supervised(P.supervised_steps)
        return
    tr1 = st.transcriptor(C.steps[0])
    if task == "transcriptor step 1":
        return
    sep2 = st.isolated("c-mix + h-mix", tr1, C.steps[1])
    if task == "step 3":
        st.fine_tune(Stages.step3_setup(C), tr1, "c-mix + h-mix", sep2, C.steps[2])


def _score_supervised(manifest: Manifest, out: Path, recipe: str, sets, engine: Engine, log, t0,
                      progress: bool) -> dict | None:
    import numpy as np

    from .score_supervised import note_table, recipe as load_recipe, sisdr_table

    P, resolved = load_recipe(recipe, sets)
    info = check_manifest("score-supervised", manifest)
    C = P.train
    if C.instruments:
        missing = [k for k in C.instruments if k not in info["instruments"]]
        if missing:
            raise WeakmirError(f"{manifest.path}: no scored stem of instrument {missing[0]!r} (the recipe's "
                               f"train.instruments); the manifest scores {', '.join(info['instruments'])}")
    if not info["valid"]:
        log(f"{manifest.path}: no scored track in split valid: the plateau schedule and early stopping are off")
    train, valid, rates, weights = _score_data(manifest, P, info["valid"])
    inst = train.instruments
    log(f"{manifest.path}: {len(train.tracks)} training tracks; instruments {', '.join(inst)}; frame-activity "
        "rates " + ", ".join(f"{k} {r:.2f}" for k, r in zip(inst, rates.tolist())))
    pool = None
    if P.workers > 1 and not engine.distributed:
        tasks = {"transcriptor step 1": (), "step 3": ("transcriptor step 1",), "supervised": ()}  # step 3: 2, then 3
        _, failed = run_tasks(tasks, _score_task, (resolved, str(manifest.path), str(out), info["valid"], progress),
                              P.workers, log)
        pool = {"workers": P.workers, "failed": failed}
    runner = StageRunner(out / "checkpoints", resolved, fingerprint(manifest.path), "score-supervised", log, engine)
    models = _score_models(stages_for(runner, P, train, valid, weights), P)
    if global_rank() != 0:
        return None
    split = info["eval_split"]
    tables = {}
    if split:
        tracks = ScoreClips.from_manifest(manifest, inst, (split,), C.sample_rate, C.hop_length, C.seconds, 1).tracks
        sisdr = {"input mixture": sisdr_table(None, tracks, inst)}
        for name, sep in models["separators"].items():
            sisdr[name] = sisdr_table(sep, tracks, inst)
            log(f"SI-SDR on split {split}, {name}: avg {sisdr[name]['avg']:.2f} dB")
        notes = {f"{name} / {where}": note_table(tr, tracks, inst, isolated=iso)
                 for where, iso in (("mixture", False), ("isolated stems", True))
                 for name, tr in models["transcriptors"].items()}
        tables = {"sisdr": sisdr, "note_accuracy": notes}
    summary = {"method": "score-supervised", "manifest": str(manifest.path), "eval_split": split, "instruments": inst,
               "activity_rates": dict(zip(inst, rates.tolist())), "stages": _summary_of(runner.curves),
               "seconds": time.perf_counter() - t0}
    if tables:
        s = tables["sisdr"]
        step3 = next(k for k in s if k.startswith("step 3"))
        summary.update({"sisdr_mixture": s["input mixture"]["avg"], "sisdr_step2": s["step 2 (c-mix + h-mix)"]["avg"],
                        "sisdr_step3": s[step3]["avg"], "sisdr_supervised": s["supervised"]["avg"]})
        gap = s["supervised"]["avg"] - s["input mixture"]["avg"]
        best = max(s["step 2 (c-mix + h-mix)"]["avg"], s[step3]["avg"])
        summary["gap_closed"] = float((best - s["input mixture"]["avg"]) / gap) if gap else float(np.nan)
    results = {"summary": summary, "recipe": resolved, **tables, "learning_curves": runner.loss_curves(),
               "workers": pool}
    _write(out, results, runner, _score_page(results))
    return results


def _score_page(r: dict):
    from ..report.figures import learning_curves
    from ..report.page import Page

    s = r["summary"]
    inst = s["instruments"]
    page = Page("weakmir train score-supervised", f"The three steps of Hung et al. (2021) and the supervised bound on "
                f"{s['manifest']} ({', '.join(inst)}), {s['seconds'] / 60:.1f} min.")
    if "sisdr" in r:
        page.section(f"Separation: SI-SDR (dB), mean over the {s['eval_split']} tracks").table(
            ["separator", *inst, "avg"], [[k, *[v[i] for i in inst], v["avg"]] for k, v in r["sisdr"].items()])
        page.section("Transcription: note accuracy (onsets, 50 ms) and false-positive rate").table(
            ["transcriptor / evaluated on", *inst, "FP rate"],
            [[k, *[v[i] for i in inst], v["false_positive_rate"]] for k, v in r["note_accuracy"].items()], digits=3)
    else:
        page.section("Scores", "The manifest has no test or valid track with a score: nothing was scored.")
    page.section("Learning curves").figure(learning_curves(r["learning_curves"], "training loss of every stage"),
                                           "learning curves", "curves")
    return page


# -- weak-mic ---------------------------------------------------------------------------------------------------

def _weak_mic(manifest: Manifest, out: Path, recipe: str, sets, engine: Engine, log, t0, progress: bool,
              model: str) -> dict | None:
    from ..data.sources.openmic import valid_pick
    from ..methods.weak_mic import train_tagger
    from .weak_mic import MODELS, prepare, recipe as load_recipe, row_config, score

    if model not in MODELS:
        raise WeakmirError(f"unknown weak-mic model {model!r}; use one of {', '.join(MODELS)}")
    P, resolved = load_recipe(recipe, sets)
    info = check_manifest("weak-mic", manifest)
    if not info["valid"]:
        from ..errors import notice

        moved = [t for t in manifest.split("train") if valid_pick(t.id)]
        if not moved or len(moved) == len(manifest.split("train")):
            raise WeakmirError(f"{manifest.path}: no track in split valid, and too few in train to set 15 % aside; "
                               "give some tracks split \"valid\" (model selection needs them)")
        for t in moved:
            t.split = "valid"
        notice(f"{manifest.path}: no split valid; {len(moved)} training clips (15 %, by id) select the model")
    D, runner, trained_on = prepare(P, {**resolved, "model": model}, manifest, out, log, progress, engine,
                                    out / "corpus" / "embedding")
    cfg = row_config(P, model)
    log(f"{manifest.path}: {len(D.splits['train']['x'])} training clips, "
        f"{100 * D.splits['train']['mask'].mean():.1f} % of their labels observed; {model}, {cfg.epochs} epochs")
    tagger = train_tagger(runner, model, cfg, D.bags("train"), D.bags("valid"), D.tagger(cfg, 0), 0)
    if global_rank() != 0:
        return None
    split = info["eval_split"] if info["eval_split"] in D.splits else None
    scores = score(tagger, D, split, P.threshold) if split else {}
    view = "true" if scores.get("true") else "observed"
    summary = {"method": "weak-mic", "model": model, "manifest": str(manifest.path), "eval_split": split,
               "scored_against": view, "features": D.features, "embedding_trained_on": trained_on,
               "clips": {k: len(v["x"]) for k, v in D.splits.items()}, "stages": _summary_of(runner.curves),
               "seconds": time.perf_counter() - t0}
    if scores:
        summary.update({k: scores[view][k] for k in ("precision", "recall", "f1", "auroc", "map")})
    results = {"summary": summary, "recipe": {**resolved, "model": model}, "scores": scores,
               "learning_curves": runner.loss_curves()}
    _write(out, results, runner, _weak_mic_page(results))
    return results


def _weak_mic_page(r: dict):
    from ..report.figures import bars, learning_curves
    from ..report.page import Page

    s = r["summary"]
    page = Page("weakmir train weak-mic", f"A {s['model']} tagger trained on the observed tags of {s['manifest']} "
                f"({s['clips']} clips; features: {s['features']}, {s['embedding_trained_on']}), "
                f"{s['seconds'] / 60:.1f} min.")
    if r["scores"]:
        sec = page.section(f"Scores on split {s['eval_split']} (percent, threshold 0.5; macro over present/absent, "
                           "mean over classes)")
        views = [v for v in ("true", "observed") if r["scores"].get(v)]
        sec.table(["labels", "precision", "recall", "F1", "AUROC", "mAP"],
                  [[v, *[r["scores"][v][k] for k in ("precision", "recall", "f1", "auroc", "map")]] for v in views])
        per = r["scores"][views[0]]["per_class_f1"]
        sec.figure(bars({s["model"]: list(per.values())}, list(per), "F1 per instrument", "F1 (%)"), "F1 per class",
                   "per_class")
    else:
        page.section("Scores", "The manifest has no test or valid clip with tags: nothing was scored.")
    page.section("Learning curve").figure(learning_curves(r["learning_curves"], "training loss"), "learning curve",
                                          "curve")
    return page


# -- majl ------------------------------------------------------------------------------------------------------

def _majl(paths, out, recipe: str, sets, engine: Engine | None, progress: bool, overwrite: bool,
          settings: str = "synth") -> dict | None:
    import hashlib

    from ..data import voice
    from .majl import mir1k_combo, mir1k_th, recipe as load_recipe, train_row, with_shifts

    if settings not in MAJL_SETTINGS:
        raise WeakmirError(f"unknown majl settings {settings!r}; use one of {', '.join(MAJL_SETTINGS)}")

    manifests = [Manifest.read(p) for p in paths]
    check_output_folder(out, inputs=[m.path for m in manifests], writes=RUN_FILES, overwrite=overwrite, option="--out")
    engine = engine or Engine(progress=progress)
    out = Path(out)
    t0 = time.perf_counter()
    log = (lambda msg: print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)) if progress else (lambda msg: None)
    P, resolved = load_recipe(recipe, sets)
    infos = [check_manifest("majl", m) for m in manifests]
    D = {"full": [], "stems": [], "pitch": [], "eval": []}
    for m, info in zip(manifests, infos):
        for t in voice.load(m, "train"):
            D[t.labelling].append(t)
        if info["eval_split"]:
            D["eval"] += [t for t in voice.load(m, info["eval_split"]) if t.labelling == "full"]
    if not D["full"]:
        counts = ", ".join(f"{m.path}: {i['labellings']}" for m, i in zip(manifests, infos))
        raise WeakmirError(f"no fully labelled training track (voice stem + f0) in {counts}; MAJL-Stage I trains on "
                           "fully labelled songs: give one manifest whose train tracks have both")
    if settings == "mir1k":  # the real-recordings section: its modules, rates, threshold and tape-speed copies
        (combo, modules), cfg, cfg2, th = mir1k_combo(P), P.mir1k.train, P.mir1k.stage2, mir1k_th(P)
        D["full"] = with_shifts(D["full"], P.mir1k.shifts)
    else:
        combo, modules, cfg, cfg2, th = P.combos[0], None, P.train, P.stage2, P.th
    key = hashlib.sha256(("".join(fingerprint(m.path) for m in manifests) + settings).encode()).hexdigest()[:16]
    runner = StageRunner(out / "checkpoints", resolved, key, "majl", log, engine)
    log(f"{len(manifests)} manifest(s): full {len(D['full'])}, stems-only {len(D['stems'])}, pitch-only "
        f"{len(D['pitch'])} training tracks; {combo.replace('x', ' x ')}, the recipe's {settings} settings")
    rows = ["pipeline", "naive", "stage1"] + (["majl"] if D["stems"] or D["pitch"] else [])
    models = {}
    for r in rows:
        models[r] = (train_row(runner, P, D, combo, "majl_both", cfg, th=th, name="majl", modules=modules, cfg2=cfg2)
                     if r == "majl" else train_row(runner, P, D, combo, r, cfg, figures=out / "figures", modules=modules))
    if global_rank() != 0:
        return None
    split = next((i["eval_split"] for i in infos if i["eval_split"]), None)
    scores = _majl_scores(models, D["eval"], P.crepe_model, 1 if engine.distributed else P.workers, progress)
    summary = {"method": "majl", "manifests": [str(m.path) for m in manifests], "combo": combo, "settings": settings,
               "tracks": {k: len(v) for k, v in D.items()}, "eval_split": split, "th": th,
               "shifts": list(P.mir1k.shifts) if settings == "mir1k" else [],
               "rows": rows, "scores": {r: v["overall"] for r, v in scores.items()}, "stages": _summary_of(runner.curves),
               "seconds": time.perf_counter() - t0}
    if not (D["stems"] or D["pitch"]):
        summary["note"] = "no stems-only or pitch-only training track: MAJL Stage II was not trained"
    results = {"summary": summary, "recipe": resolved, "scores": scores, "learning_curves": runner.loss_curves()}
    _write(out, results, runner, _majl_page(results))
    return results


def _majl_scores(models: dict, tracks: list, crepe_model: str, workers: int, progress: bool) -> dict:
    """Every row scored on the held-out fully labelled ``tracks`` (:func:`weakmir.experiments.majl.score_jobs`: in
    ``workers`` one-thread processes, which read the tracks from a temporary pickle). ``{row: scores}`` in the
    order of ``models``; empty without tracks."""
    import pickle
    import tempfile

    from .majl import score_jobs

    if not tracks:
        return {}
    jobs = {r: ("model", "eval", m, False) for r, m in models.items()}
    with tempfile.TemporaryDirectory(prefix="weakmir-score-") as tmp:
        data = None
        if workers > 1:
            data = Path(tmp) / "eval.pkl"
            data.write_bytes(pickle.dumps({"eval": tracks}))
        S = score_jobs(jobs, {}, crepe_model, {"eval": tracks}, workers, data, progress)
    return {r: S[r] for r in models}


def _majl_page(r: dict):
    from ..report.figures import learning_curves
    from ..report.page import Page
    from .majl import seed_note

    s = r["summary"]
    n = s["tracks"]["full"] // (1 + len(s.get("shifts", [])))
    copies = (f" ({n} and a copy of each at {', '.join(f'{v:+g}' for v in s['shifts'])} semitones)"
              if s.get("shifts") else "")
    page = Page("weakmir train majl", f"{s['combo'].replace('x', ' x ')} trained on {', '.join(s['manifests'])} "
                f"with the recipe's {s.get('settings', 'synth')} settings "
                f"(training tracks: {s['tracks']['full']} full{copies}, {s['tracks']['stems']} stems-only, "
                f"{s['tracks']['pitch']} pitch-only), {s['seconds'] / 60:.1f} min." + (f" {s['note']}." if s.get("note") else "")
                + " " + seed_note(r["recipe"]["seed"]))
    if s["scores"]:
        page.section(f"Scores on split {s['eval_split']} (SDR: BSS Eval v4 median, GNSDR dB, RPA / RCA %)").table(
            ["model", "SDR", "GNSDR", "RPA", "RCA"],
            [[k, v["sdr"], v["gnsdr"], v["rpa"], v["rca"]] for k, v in s["scores"].items()])
    else:
        page.section("Scores", "No fully labelled test or valid track: nothing was scored.")
    page.section("Learning curves").figure(learning_curves(r["learning_curves"], "training loss of every stage"),
                                           "learning curves", "curves")
    return page


def _write(out: Path, results: dict, runner: StageRunner, page) -> None:
    atomic_write_json(out / "results.json", results)
    runner.write_metrics(out / "metrics.csv")
    page.write(out)


__all__ = ["METHODS", "check_manifest", "train"]
