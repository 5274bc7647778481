"""How far one run of the majl table can be trusted: its rows trained from several seeds, scored on the VALID songs.

Prints one JSON object: per combination and row the valid SDR (dB) / GNSDR / RPA / RCA (%) of every seed (lists
in ``seeds``' order), the mean and standard deviation (numpy's: over the seeds, ddof 0) of SDR and RPA, and MAJL-Stage I minus naive joint learning and
minus the pipeline (the comparisons the paper's Table 5 makes), paired by seed: per seed, mean, standard error and the
seeds where Stage I is above. The seed is the recipe's ``seed`` (initialisation, crops, frames: ``weakmir experiment
majl --set seed=K`` trains the same models); the corpus (``corpus_seed``) is one for all seeds. Only the valid
songs are scored (the experiment chooses ``th`` on them; nothing here reads a test song).

The quick recipe's ``pipeline,naive,stage1`` rows of ``UxC,UxH`` on 3 seeds take ~16 min on 2 cores (two
one-thread worker processes; 15.9 min on 2026-12-07); the checkpoints are kept under ``--out`` (default a temporary folder), and a
second run with the same ``--out`` loads them instead of training.

    python benchmarks/bench_majl_seeds.py [--preset quick] [--seeds 0,1,2] [--combos UxC,UxH]
        [--rows pipeline,naive,stage1] [--out DIR] [--set key=value ...]
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


def _setup(out: str, preset: str, sets: tuple, seed: int):
    """(P, D, runners) of one seed in this process (built once per process and seed)."""
    from weakmir.data.manifest import Manifest
    from weakmir.experiments import majl as E
    from weakmir.experiments.stages import Engine, fingerprint

    if seed not in _STATE:
        P, resolved = E.recipe(preset, list(sets) + [f"seed={seed}"])
        if "data" not in _STATE:  # once per process (the main process sets both from pop_corpus)
            manifest = Manifest.read(Path(out) / "corpus" / "pop")
            _STATE["data"], _STATE["keys"] = E.views(manifest, P.full, P.trim_intro), {"synth": fingerprint(manifest.path)}
        _STATE[seed] = (P, E.runners_for(Path(out) / f"seed{seed}", resolved, _STATE["keys"], lambda m: None,
                                         Engine(progress=False)))
    P, runners = _STATE[seed]
    return P, _STATE["data"], runners


def _task(name: str, out: str, preset: str, sets: tuple):
    """``seed{K}/{combo}/{row}``: train (or load) the row; a row (not a warm start) is scored on the valid songs."""
    from weakmir.experiments import majl as E

    where, combo, row = name.split("/")
    P, D, runners = _setup(out, preset, sets, int(where[4:]))
    model = E.run_task(f"{combo}/{row}", runners, P, D, None)
    return None if row == "warm" else E.score(model, D["valid"])["overall"]


def paired(a: dict, b: dict) -> dict:
    """Row ``a`` minus row ``b`` seed by seed, for SDR and RPA: the differences (lists in seed order), their mean,
    standard error (sample std / sqrt(seeds); None for one seed) and the number of seeds where ``a`` is above."""
    out: dict = {}
    for k in ("sdr", "rpa"):
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
    ap.add_argument("--rows", default="pipeline,naive,stage1",
                    help="rows of the experiment's task list (a MAJL row trains the Stage I it starts from, unscored)")
    ap.add_argument("--out", default="", help="folder for the corpus and checkpoints (default: a temporary one)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="recipe override key=value")
    a = ap.parse_args()

    from weakmir.experiments import majl as E
    from weakmir.experiments.stages import fingerprint, run_tasks

    seeds = [int(s) for s in a.seeds.split(",") if s]
    rows = [r for r in a.rows.split(",") if r]
    P, _ = E.recipe(a.preset, a.sets)
    combos = [c for c in a.combos.split(",") if c] or list(P.combos)
    if "seed" in {s.split("=")[0] for s in a.sets}:
        sys.exit("bench_majl_seeds: give the seeds with --seeds, not --set seed=...")
    if unknown := [c for c in combos if c not in P.combos]:
        sys.exit(f"bench_majl_seeds: combination(s) {', '.join(unknown)} not in the {a.preset} recipe's {list(P.combos)}")
    tmp = tempfile.TemporaryDirectory() if not a.out else None
    out = Path(a.out or tmp.name)
    t0 = time.perf_counter()
    manifest, D = E.pop_corpus(P, out / "corpus" / "pop", progress=False)
    # a task trained here (below) reads these views and key instead of loading the corpus again
    _STATE["data"], _STATE["keys"] = D, {"synth": fingerprint(manifest.path)}
    base = E.tasks_of(P, mir1k=False)  # the experiment's own graph: warm starts first, MAJL after Stage I
    if missing := [r for r in rows if not any(t == f"{c}/{r}" for t in base for c in combos)]:
        sys.exit(f"bench_majl_seeds: row(s) {', '.join(missing)} not among the recipe's tasks {sorted(set(t.split('/')[1] for t in base))}")
    want = [f"{c}/{r}" for c in combos for r in rows if f"{c}/{r}" in base]  # later combinations have fewer rows
    keep = set()
    while want:  # the rows asked for and the tasks they need (a MAJL row's Stage I, the warm starts)
        t = want.pop()
        if t not in keep:
            keep.add(t)
            want.extend(base[t])
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


if __name__ == "__main__":
    main()
