"""How far one run of the majl table can be trusted: its rows trained from several seeds, scored on the VALID songs
(or, with ``--folds K``, on MIR-1K's training clips held out K ways).

Prints one JSON object: per combination and row the valid SDR (dB) / GNSDR / RPA / RCA (%) of every seed (lists
in ``seeds``' order), the mean and standard deviation (numpy's: over the seeds, ddof 0) of SDR and RPA, and MAJL-Stage I minus naive joint learning and
minus the pipeline (the comparisons the paper's Table 5 makes), paired by seed: per seed, mean, standard error and the
seeds where Stage I is above. The seed is the recipe's ``seed`` (initialisation, crops, frames: ``weakmir experiment
majl --set seed=K`` trains the same models); the corpus (``corpus_seed``) is one for all seeds. Only the valid
songs are scored (the experiment chooses ``th`` on them; nothing here reads a test song).

The quick recipe's ``pipeline,naive,stage1`` rows of ``UxC,UxH`` on 3 seeds take ~16 min on 2 cores (two
one-thread worker processes; 15.9 min on 2026-12-07); the checkpoints are kept under ``--out`` (default a temporary folder), and a
second run with the same ``--out`` loads them instead of training.

With ``--folds K`` the real part instead: MIR-1K's training songs (``--mir1k DIR``, default the experiment's) are
split into K folds by song (sorted by name, song ``i`` in fold ``i mod K``); per fold and seed the experiment's
MIR-1K rows (``pipeline,naive,stage1,majl``: Stage II with the synth corpus's single-labelled songs, as the
experiment trains it) train on the other folds' clips and are scored on the fold's, and so is torchcrepe on the
pipeline's voice (``crepe_on_separated``, the issue's peer). MIR-1K's test songs are never read: this is how the
recipe's ``mir1k`` settings can be chosen. It prints per row the lists (fold-major within each seed) of SDR,
GNSDR, RPA, RCA and the voiced frames guessed an octave up / down (``octave_up``, ``octave_down``, %), the means
of SDR and RPA, and paired differences (``stage1_minus_pipeline``, ``majl_minus_stage1``, ``majl_minus_pipeline``,
``majl_minus_crepe_on_separated`` in RPA). 4 folds, seed 0, quick: ~10 min on 2 cores.

    python benchmarks/bench_majl_seeds.py [--preset quick] [--seeds 0,1,2] [--combos UxC,UxH]
        [--rows pipeline,naive,stage1] [--out DIR] [--set key=value ...]
    python benchmarks/bench_majl_seeds.py --folds 4 [--mir1k DIR] [--seeds 0] [--rows pipeline,naive,stage1,majl] ...
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_STATE: dict = {}


def _setup(out: str, preset: str, sets: tuple, seed: int, fold: int | None = None, folds: int = 0):
    """(P, D, runners) of one seed (and MIR-1K fold) in this process (built once per process, seed and fold).
    With a fold, ``D["mir1k_train"]`` is the other folds' clips and ``D["held"]`` the fold's."""
    from weakmir.data.manifest import Manifest
    from weakmir.experiments import majl as E
    from weakmir.experiments.stages import Engine, fingerprint

    if (seed, fold) not in _STATE:
        P, resolved = E.recipe(preset, list(sets) + [f"seed={seed}"])
        if "data" not in _STATE:  # once per process (the main process sets both from pop_corpus)
            manifest = Manifest.read(Path(out) / "corpus" / "pop")
            _STATE["data"], _STATE["keys"] = E.views(manifest, P.full, P.trim_intro), {"synth": fingerprint(manifest.path)}
        D, keys, where = _STATE["data"], dict(_STATE["keys"]), Path(out) / f"seed{seed}"
        if fold is not None:
            mm = Manifest.read(Path(out) / "corpus" / "mir1k")
            held, rest = mir1k_folds(mm, folds, fold)
            D = {**D, "mir1k_train": rest, "held": held}
            keys["mir1k"] = f"{fingerprint(mm.path)}-fold{fold}of{folds}"  # another fold's models are never loaded
            where = where / f"fold{fold}"
        _STATE[(seed, fold)] = (P, D, E.runners_for(where, resolved, keys, lambda m: None, Engine(progress=False)))
    return _STATE[(seed, fold)]


def mir1k_fold_ids(manifest, folds: int) -> list[list[str]]:
    """The ids of MIR-1K's training clips (those with a voice view) in :func:`weakmir.data.sources.mir1k.folds_by_song`'s
    folds, read from the manifest alone (no audio)."""
    from weakmir.data.sources.mir1k import folds_by_song
    from weakmir.data.voice import labelling

    return folds_by_song([t.id for t in manifest.split("train") if labelling(t) is not None], folds)


def mir1k_folds(manifest, folds: int, fold: int) -> tuple[list, list]:
    """MIR-1K's training clips as ``(held, rest)`` voice tracks: fold ``fold`` of :func:`mir1k_fold_ids` held out."""
    from weakmir.data import voice as voice_view

    held = set(mir1k_fold_ids(manifest, folds)[fold])
    clips = voice_view.load(manifest, "train")
    return [t for t in clips if t.id in held], [t for t in clips if t.id not in held]


def needed(graph: dict, wanted) -> set:
    """The tasks ``wanted`` and every task they need, transitively, in ``graph`` (``{task: tasks it needs}``)."""
    keep, todo = set(), list(wanted)
    while todo:
        t = todo.pop()
        if t not in keep:
            keep.add(t)
            todo.extend(graph[t])
    return keep


def _task(name: str, out: str, preset: str, sets: tuple, folds: int = 0):
    """``seed{K}/{combo}/{row}``: train (or load) the row; a row (not a warm start) is scored on the valid songs.
    ``seed{K}/fold{F}/{row}`` (``folds`` > 0): a MIR-1K row trained without fold F, scored on it; the
    pipeline's result also holds torchcrepe on its voice (``crepe_on_separated``)."""
    from weakmir.experiments import majl as E

    where, combo, row = name.split("/")
    if combo.startswith("fold"):
        P, D, runners = _setup(out, preset, sets, int(where[4:]), int(combo[4:]), folds)
        model = E.run_task(f"mir1k/{row}", runners, P, D, None)
        if row == "warm":
            return None
        waves = {} if row == "pipeline" else None  # the peer's input: only the pipeline's voice is kept
        r = E.score(model, D["held"], waves=waves)["overall"]
        if row == "pipeline":
            r["crepe_on_separated"] = E.crepe_scores(D["held"], P.crepe_model, waves)["overall"]
        return r
    P, D, runners = _setup(out, preset, sets, int(where[4:]))
    model = E.run_task(f"{combo}/{row}", runners, P, D, None)
    return None if row == "warm" else E.score(model, D["valid"])["overall"]


def paired(a: dict, b: dict, keys=("sdr", "rpa")) -> dict:
    """Row ``a`` minus row ``b`` seed by seed, for SDR and RPA: the differences (lists in seed order), their mean,
    standard error (sample std / sqrt(seeds); None for one seed) and the number of seeds where ``a`` is above."""
    out: dict = {}
    for k in keys:
        d = np.asarray(a[k], float) - np.asarray(b[k], float)
        out[k] = [round(float(x), 2) for x in d]
        out[f"{k}_mean"] = round(float(d.mean()), 2)
        out[f"{k}_se"] = round(float(d.std(ddof=1) / np.sqrt(len(d))), 2) if len(d) > 1 else None
        out[f"{k}_above"] = int((d > 0).sum())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated recipe seeds")
    ap.add_argument("--combos", default="", help="comma-separated combinations (default: the recipe's)")
    ap.add_argument("--rows", default="",
                    help="rows of the experiment's task list (a MAJL row trains the Stage I it starts from, unscored); "
                         "default pipeline,naive,stage1 (with --folds: pipeline,naive,stage1,majl)")
    ap.add_argument("--folds", type=int, default=0,
                    help="score the MIR-1K rows on MIR-1K's training songs held out this many ways (0: the synth valid songs)")
    ap.add_argument("--mir1k", default="", help="the MIR-1K folder for --folds (default: the experiment's, ../shared/data/mir1k)")
    ap.add_argument("--out", default="", help="folder for the corpus and checkpoints (default: a temporary one)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="recipe override key=value")
    a = ap.parse_args()

    from weakmir.experiments import majl as E
    from weakmir.experiments.stages import fingerprint, run_tasks

    seeds = [int(s) for s in a.seeds.split(",") if s]
    rows = [r for r in (a.rows or ("pipeline,naive,stage1,majl" if a.folds else "pipeline,naive,stage1")).split(",") if r]
    P, _ = E.recipe(a.preset, a.sets)
    combos = [c for c in a.combos.split(",") if c] or list(P.combos)
    if "seed" in {s.split("=")[0] for s in a.sets}:
        sys.exit("bench_majl_seeds: give the seeds with --seeds, not --set seed=...")
    if unknown := [c for c in combos if c not in P.combos]:
        sys.exit(f"bench_majl_seeds: combination(s) {', '.join(unknown)} not in the {a.preset} recipe's {list(P.combos)}")
    tmp = tempfile.TemporaryDirectory() if not a.out else None
    out = Path(a.out or tmp.name)
    t0 = time.perf_counter()
    folds = mir1k_check(a, P, out, rows) if a.folds else None  # before the corpus: a bad --folds fails in seconds
    manifest, D = E.pop_corpus(P, out / "corpus" / "pop", progress=False)
    # a task trained here (below) reads these views and key instead of loading the corpus again
    _STATE["data"], _STATE["keys"] = D, {"synth": fingerprint(manifest.path)}
    if folds is not None:
        print(json.dumps(mir1k_folds_main(a, out, folds, seeds, rows, t0)))
        if tmp is not None:
            tmp.cleanup()
        return
    base = E.tasks_of(P, mir1k=False)  # the experiment's own graph: warm starts first, MAJL after Stage I
    if missing := [r for r in rows if not any(t == f"{c}/{r}" for t in base for c in combos)]:
        sys.exit(f"bench_majl_seeds: row(s) {', '.join(missing)} not among the recipe's tasks {sorted(set(t.split('/')[1] for t in base))}")
    # the rows asked for (later combinations have fewer) and the tasks they need (a MAJL row's Stage I, the warm starts)
    keep = needed(base, [f"{c}/{r}" for c in combos for r in rows if f"{c}/{r}" in base])
    tasks = {f"seed{s}/{t}": tuple(f"seed{s}/{n}" for n in needs) for s in seeds for t, needs in base.items() if t in keep}
    done, failed = run_tasks(tasks, _task, (str(out), a.preset, tuple(a.sets)), a.workers, lambda m: print(m, file=sys.stderr))
    for t in tasks:  # a task that failed in a worker (run_tasks reports it and skips what needs it): here
        if t not in done:
            done[t] = _task(t, str(out), a.preset, tuple(a.sets))
    res: dict = {"preset": a.preset, "sets": a.sets, "split": "valid", "seeds": seeds, "valid_songs": [t.id for t in D["valid"]]}
    for c in combos:  # {row: {metric: [per seed]}, mean / std of SDR and RPA}
        res[c] = {r: {k: [round(float(done[f"seed{s}/{c}/{r}"][k]), 2) for s in seeds] for k in ("sdr", "gnsdr", "rpa", "rca")}
                  for r in rows if f"seed{seeds[0]}/{c}/{r}" in done}
        for v in res[c].values():
            v.update({f"{k}_{f.__name__}": round(float(f(v[k])), 2) for k in ("sdr", "rpa") for f in (np.mean, np.std)})
        for other in ("naive", "pipeline"):  # paired by seed: the comparisons of Table 5, and their standard errors
            if "stage1" in res[c] and other in res[c]:
                res[c][f"stage1_minus_{other}"] = paired(res[c]["stage1"], res[c][other])
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["failed_in_workers"] = failed
    print(json.dumps(res))
    if tmp is not None:
        tmp.cleanup()


def mir1k_check(a, P, out: Path, rows: list) -> tuple:
    """``--folds K``: MIR-1K converted into ``out/corpus/mir1k``, the folds and rows checked; ``(manifest, the MIR-1K
    part of the experiment's task graph)``."""
    from weakmir.data.manifest import Manifest
    from weakmir.data.sources import mir1k as mir1k_source
    from weakmir.errors import WeakmirError
    from weakmir.experiments import majl as E

    root = Path(a.mir1k) if a.mir1k else E.DEFAULT_MIR1K
    if not (root / "Wavfile").is_dir():
        sys.exit(f"bench_majl_seeds: {root}: no Wavfile/ folder; give --mir1k DIR (the MIR-1K folder)")
    mir1k_source.load(root, out / "corpus" / "mir1k", progress=False)
    mm = Manifest.read(out / "corpus" / "mir1k")
    try:  # too many or too few folds: one line here, not in every worker
        mir1k_fold_ids(mm, a.folds)
    except WeakmirError as e:
        sys.exit(f"bench_majl_seeds: --folds {a.folds}: {e}")
    base = {t: needs for t, needs in E.tasks_of(P, mir1k=True).items() if t.startswith("mir1k/")}
    if missing := [r for r in rows if f"mir1k/{r}" not in base]:
        sys.exit(f"bench_majl_seeds: row(s) {', '.join(missing)} not among the MIR-1K rows "
                 f"{sorted(t.split('/')[1] for t in base)}")
    return mm, base


def mir1k_folds_main(a, out: Path, folds: tuple, seeds: list, rows: list, t0: float) -> dict:
    """``--folds K``: the experiment's MIR-1K rows per seed and fold, scored on the held-out fold (module docstring)."""
    from weakmir.experiments.stages import run_tasks

    mm, base = folds
    keep = needed(base, [f"mir1k/{r}" for r in rows])
    runs = [(s, k) for s in seeds for k in range(a.folds)]
    name = lambda s, k, t: f"seed{s}/fold{k}/{t.split('/')[1]}"  # noqa: E731
    tasks = {name(s, k, t): tuple(name(s, k, n) for n in base[t]) for s, k in runs for t in base if t in keep}
    args = (str(out), a.preset, tuple(a.sets), a.folds)
    done, failed = run_tasks(tasks, _task, args, a.workers, lambda m: print(m, file=sys.stderr))
    for t in tasks:
        if t not in done:
            done[t] = _task(t, *args)
    res: dict = {"preset": a.preset, "sets": a.sets, "split": f"MIR-1K training songs, {a.folds} folds", "seeds": seeds,
                 "order": [f"seed{s}/fold{k}" for s, k in runs],
                 "folds": mir1k_fold_ids(mm, a.folds)}
    pitch_keys = ("rpa", "rca", "octave_up", "octave_down")
    M = {r: {k: [round(float(done[f"seed{s}/fold{f}/{r}"][k]), 2) for s, f in runs] for k in ("sdr", "gnsdr", *pitch_keys)}
         for r in rows}
    if "pipeline" in rows:
        M["crepe_on_separated"] = {k: [round(float(done[f"seed{s}/fold{f}/pipeline"]["crepe_on_separated"][k]), 2)
                                       for s, f in runs] for k in pitch_keys}
    for v in M.values():
        v.update({f"{k}_mean": round(float(np.mean(v[k])), 2) for k in ("sdr", "rpa") if k in v})
    for x, y in (("stage1", "pipeline"), ("majl", "stage1"), ("majl", "pipeline")):
        if x in M and y in M:
            M[f"{x}_minus_{y}"] = paired(M[x], M[y])
    if "majl" in M and "crepe_on_separated" in M:
        M["majl_minus_crepe_on_separated"] = paired(M["majl"], M["crepe_on_separated"], keys=("rpa",))
    res["mir1k"] = M
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["failed_in_workers"] = failed
    return res


if __name__ == "__main__":
    main()
