"""The shared stage runner: train a stage once, keep it, load it on re-run, resume it when killed.

A paper's experiment (and ``weakmir train``) is a list of *stages* — a model
trained by one step function on one data set — and tables computed from them.
:class:`StageRunner` trains each stage with :func:`weakmir.train.engine.fit`:

* **cache**: a stage is saved as ``DIR/checkpoints/<stage>.ckpt`` (a
  self-describing checkpoint that ``weakmir separate`` / ``transcribe`` read)
  under a *key*: the hash of the resolved recipe, the data's fingerprint
  (:func:`fingerprint` of the manifest), the stage's own settings and the
  model's constructor arguments. A re-run with the same key loads it instead
  of training; anything else retrains it. The resolved recipe goes into the
  checkpoint too.
* **resume**: while a stage trains, Lightning checkpoints it every
  ``checkpoint_every`` steps under ``DIR/checkpoints/.resume/<stage>-<key>/``;
  a run killed mid-stage continues there (bit-identical on CPU), and the
  folder is removed once the stage is saved.
* **curves**: every stage's logged loss history (:attr:`StageRunner.curves`),
  written to ``DIR/metrics.csv`` by :meth:`StageRunner.write_metrics`.
* **side by side**: :func:`run_tasks` trains independent stages in worker
  processes of one thread each, every task as soon as the tasks it needs are
  done (``graphlib`` orders them); a task saves its stage checkpoints, which
  the caller then loads.

Engine options (``devices``, ``strategy``, ``num_nodes``, ``accelerator``)
pass through to Lightning; with more than one process, only rank 0 writes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import WeakmirError, interrupt
from ..train import checkpoint
from ..train.engine import FitResult, fit, write_history_csv


def fingerprint(manifest_path) -> str:
    """The data's fingerprint: sha256 of the manifest file (its tracks, splits, labels, paths and
    provenance; the audio is taken to be what the manifest says)."""
    p = Path(manifest_path)
    return hashlib.sha256(p.read_bytes()).hexdigest()[:16]


def stage_file(name: str) -> str:
    """``"fine-tune + AML"`` -> ``"fine-tune+AML"``: a stage's checkpoint file stem."""
    return name.replace(" + ", "+").replace(" / ", "_").replace(" ", "_")


@dataclass
class Engine:
    """How stages train: Lightning's accelerator and processes, and the resume interval."""

    accelerator: str = "cpu"
    devices: object = 1
    strategy: str = "auto"
    num_nodes: int = 1
    checkpoint_every: int = 100
    progress: bool = False

    def fit_options(self) -> dict:
        return {"accelerator": self.accelerator, "devices": self.devices, "strategy": self.strategy,
                "num_nodes": self.num_nodes, "checkpoint_every": self.checkpoint_every, "progress": self.progress}

    @property
    def distributed(self) -> bool:
        return self.num_nodes > 1 or str(self.devices) not in ("1", "auto") and self.devices != [0]


@dataclass
class StageRunner:
    """Trains (or loads) the stages of one run under ``dir`` (``DIR/checkpoints``)."""

    dir: Path
    recipe: dict
    data: str  # the data's fingerprint
    method: str
    log: object = print
    engine: Engine = field(default_factory=Engine)
    curves: dict = field(default_factory=dict)  # {stage: FitResult}

    def __post_init__(self):
        self.dir = Path(self.dir)
        # with several processes, a stage is loaded only from a checkpoint that was there when the run began:
        # a rank must never skip (load) a stage that the others are about to train together
        self._loadable = ({p.name for p in self.dir.glob("*.ckpt")} if self.dir.is_dir() else set()
                          ) if self.engine.distributed else None

    def path(self, name: str) -> Path:
        return self.dir / f"{stage_file(name)}.ckpt"

    def key(self, name: str, settings: dict) -> str:
        blob = json.dumps({"stage": name, "settings": settings, "recipe": self.recipe, "data": self.data},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def load(self, name: str, model, settings: dict, also=None) -> bool:
        """Load stage ``name`` into ``model`` (and the ``also`` models) when its checkpoint holds ``settings``'s
        key; True when it did."""
        path, also = self.path(name), also or {}
        if not path.exists() or (self._loadable is not None and path.name not in self._loadable):
            return False
        key = self.key(name, settings)
        try:
            saved, meta = checkpoint.load(path)
        except WeakmirError:
            return False
        extra = {k: self.path(f"{name} {k}") for k in also}
        if meta.get("config", {}).get("key") != key or not all(p.exists() for p in extra.values()):
            return False
        model.load_state_dict(saved.state_dict())
        model.eval()
        for k, m in also.items():
            m.load_state_dict(checkpoint.load(extra[k])[0].state_dict())
            m.eval()
        cfg = meta["config"]
        self.curves[name] = FitResult(losses=list(cfg.get("curve", [])), val_losses=list(cfg.get("val", [])),
                                      lrs=list(cfg.get("lrs", [])), steps=int(cfg.get("steps", 0)))
        self.log(f"{name}: loaded {path.name}")
        return True

    def train(self, name: str, model, step, data, steps: int, batch_size: int, lr: float, settings: dict,
              kwargs: dict, valid=None, trains=None, also=None, seed: int = 0, generators=(), **fit_kwargs):
        """Train ``model`` (or the ``trains`` module holding it) with ``step`` on ``data``; save ``model``
        (built with ``kwargs``) and the ``also`` models (``{suffix: model}``) trained with it. A checkpoint
        with the same key is loaded instead. Returns ``model``."""
        settings = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "kwargs": kwargs,
                    **{k: v for k, v in fit_kwargs.items() if k != "progress"}, **settings}
        if self.load(name, model, settings, also):
            return model
        key = self.key(name, settings)
        resume = self.dir / ".resume" / f"{stage_file(name)}-{key}"
        t = time.perf_counter()
        h = fit(trains or model, step, data, steps, batch_size, lr, val_set=valid, seed=seed, run_dir=resume,
                generators=generators, **{**self.engine.fit_options(), **fit_kwargs})
        self.curves[name] = h
        if h.rank == 0:
            meta = {"key": key, "curve": h.losses, "val": h.val_losses, "lrs": h.lrs, "steps": h.steps,
                    "method": self.method, "stage": name, "recipe": self.recipe, "data": self.data}
            for k, m in (also or {}).items():  # first, so that the main checkpoint marks a complete stage
                checkpoint.save(self.path(f"{name} {k}"), m, m.kwargs(), {**meta, "curve": [], "key": None})
            checkpoint.save(self.path(name), model, kwargs, meta)
            shutil.rmtree(resume, ignore_errors=True)
        first, last = np.mean(h.losses[:10]) if h.losses else float("nan"), np.mean(h.losses[-10:]) if h.losses else float("nan")
        self.log(f"{name}: {h.steps} steps in {time.perf_counter() - t:.0f} s, loss {first:.2f} -> {last:.2f}"
                 + (" (stopped early)" if h.stopped_early else "")
                 + (f" (resumed at step {h.resumed_from})" if h.resumed_from else ""))
        return model

    def write_metrics(self, path) -> Path:
        """``path`` (``RUN/metrics.csv``): every stage's logged losses (:func:`write_history_csv`)."""
        return write_history_csv(path, self.curves)

    def loss_curves(self) -> dict:
        """``{stage: per-step training losses}`` (for figures and results.json)."""
        return {k: list(v.losses) for k, v in self.curves.items()}


def _one_thread() -> None:
    import signal

    import torch

    torch.set_num_threads(1)
    signal.signal(signal.SIGTERM, interrupt)  # a stopped worker removes its temporary files as Ctrl-C does


def run_tasks(tasks: dict, target, args: tuple, workers: int, log) -> tuple[dict, dict]:
    """Run ``target(name, *args)`` for every task of ``tasks`` (``{name: names it needs}``) in ``workers``
    one-thread processes (spawned), each as soon as the tasks it needs are done, in ``tasks``' order
    among those ready (put the longest chains first). On 2 cores this has ~1.5x the throughput of one
    process on two threads for the small convolutions of the CPU presets. ``target`` must be picklable
    (a module-level function) and save what it trains; a task that fails is reported, and the tasks that
    need it are not run (the caller trains what is missing).

    Returns ``(results {name: target's return value}, failed {name: error})``.
    """
    import graphlib
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    order = {name: i for i, name in enumerate(tasks)}
    sorter = graphlib.TopologicalSorter({name: tuple(needs) for name, needs in tasks.items()})
    try:
        sorter.prepare()
    except graphlib.CycleError as e:
        raise WeakmirError(f"stages need each other in a cycle ({' -> '.join(e.args[1])}); fix the stage list") from e
    results, failed = {}, {}
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread) as ex:
        try:
            _schedule(ex, sorter, order, target, args, workers, log, results, failed)
        except BaseException:
            # stopped (Ctrl-C, SIGTERM) or failed here: stop the workers now rather than wait for their
            # stages; each removes its temporary files and keeps its resume checkpoint
            for proc in list((getattr(ex, "_processes", None) or {}).values()):
                if proc.is_alive():
                    proc.terminate()
            ex.shutdown(wait=True, cancel_futures=True)
            raise
    return results, failed


def _schedule(ex, sorter, order, target, args, workers, log, results, failed) -> None:
    """:func:`run_tasks`' loop: submit what is ready, collect what finishes (into ``results`` / ``failed``)."""
    from concurrent.futures import FIRST_COMPLETED, wait

    running, ready = {}, []
    while True:
        ready = sorted(set(ready) | set(sorter.get_ready()), key=order.get)
        while ready and len(running) < workers:
            name = ready.pop(0)
            running[ex.submit(target, name, *args)] = name
        if not running:
            return  # all done, or what is left needs a task that failed
        finished, _ = wait(running, return_when=FIRST_COMPLETED)
        for f in finished:
            name = running.pop(f)
            try:
                results[name] = f.result()
                sorter.done(name)
            except Exception as e:  # noqa: BLE001  (any failure: the caller trains the task instead)
                failed[name] = f"{type(e).__name__}: {e}"
                log(f"{name}: failed in a worker ({failed[name]}); trained here instead")


__all__ = ["fingerprint", "stage_file", "Engine", "StageRunner", "run_tasks"]
