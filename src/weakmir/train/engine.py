"""The training engine: PyTorch Lightning runs the loop; a method supplies a step function.

``fit(model, step, train_set, ...)`` wraps ``model`` and ``step(model, batch) ->
(loss, logs)`` in a LightningModule and runs ``lightning.Trainer``. What
Lightning gives, and how it is used here:

* **loop and scale**: ``accelerator``, ``devices``, ``strategy``, ``num_nodes``
  pass straight to ``lightning.Trainer`` (``devices=2, strategy="ddp"`` on CPU
  runs two gloo processes; on a Slurm cluster Lightning's own launcher reads the
  job's environment). ``batch_size`` is the *global* batch: each of the
  ``world`` processes draws ``batch_size / world`` examples per step, and its
  share of an epoch is every ``world``-th example (:class:`ShareSampler`), so
  the processes see disjoint examples and together the same ones a single
  process would, in the same steps.
* **history from logged metrics**: the step loss is logged (``train_loss``,
  averaged over processes) and :class:`FitResult` reads it back from what was
  logged, never from inside the step. The validation loss (``val_loss``) is
  the mean over the whole validation set, which every process scores.
* **resume**: with ``run_dir``, a Lightning checkpoint (weights, optimiser,
  schedulers, early stopping, loop counters, the data position, the random
  generators and the loss history) is written to ``run_dir/last.ckpt``
  every ``checkpoint_every`` optimiser steps and at the end, atomically. The
  same call after the process was killed resumes from it and ends with the
  weights an uninterrupted run ends with (bit-identical on CPU with a fixed
  seed: ``tests/train/test_engine.py`` kills a run at a random step). With
  several intra-op threads that holds only on an idle machine: beside a busy
  process an X-UMX's weights came out different in their last bits in 2 of
  8 *uninterrupted* two-thread runs, never with one thread
  (``OMP_NUM_THREADS=1``), which is how ``tests/experiments/test_train.py``
  compares a stopped and resumed run with a whole one.
  ``run_dir/logs/`` holds Lightning's CSV log (and TensorBoard's, when
  installed) of each attempt. Only rank 0 writes files.
* **progress**: Lightning's progress bar with ``progress=True``.

Epoch-seeded datasets (:class:`weakmir.data.mixing.MixDataset`,
:class:`weakmir.data.scores.ScoreClips`) get ``set_epoch`` every epoch.

With a ``val_set``, the validation loss is computed after every epoch
(``len(train_set) // batch_size`` steps) and two schedules can use it:
``lr_patience`` halves (``lr_factor``) the learning rate once the validation
loss has not improved for that many consecutive epochs, ``stop_patience``
stops training once it has not improved for that many (score-supervised_hung2021
§3.2: 2 and 10). ``max_steps`` still bounds the run.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import WeakmirError


@dataclass
class FitResult:
    losses: list[float] = field(default_factory=list)  # the logged train_loss of every step
    val_losses: list[float] = field(default_factory=list)  # one per epoch (the mean over the val set)
    lrs: list[float] = field(default_factory=list)  # the learning rate at the end of each epoch
    steps: int = 0
    stopped_early: bool = False
    resumed_from: int | None = None  # the step a resumed run started from
    rank: int = 0  # this process's global rank (files are written by rank 0 only)
    best_epoch: int | None = None  # with keep_best: the epoch whose weights the model ends with


class ShareSampler(torch.utils.data.Sampler):
    """Rank ``rank``'s share of an epoch of ``n`` examples: ``rank, rank + world, ...`` (the same count on
    every rank), from position ``start`` on; ``len`` is always the whole share, so a resumed epoch ends
    where an uninterrupted one does."""

    def __init__(self, n: int, rank: int = 0, world: int = 1):
        self.rank, self.world, self.share, self.start = int(rank), int(world), int(n) // int(world), 0

    def __len__(self) -> int:
        return self.share

    def __iter__(self):
        start, self.start = self.start, 0  # a resumed position holds for one epoch only
        return iter(range(self.rank + start * self.world, self.share * self.world, self.world))


class ResumableLoader(torch.utils.data.DataLoader):
    """A DataLoader over a :class:`ShareSampler` that knows how many batches of the epoch it has handed
    out (``state_dict``) and can start an epoch past them (``load_state_dict``): Lightning saves and
    restores it with its checkpoint, so a resumed run sees the batches the killed run would have seen."""

    def __init__(self, dataset, batch_size: int, rank: int = 0, world: int = 1, **kw):
        self._share = ShareSampler(len(dataset), rank, world)
        # its own generator: a DataLoader draws a base seed at every iter(), and from the global one that
        # draw would shift the step's random numbers on resume (iter() happens at a different time)
        super().__init__(dataset, batch_size=batch_size, sampler=self._share,
                         drop_last=len(self._share) >= batch_size, generator=torch.Generator(), **kw)
        self._served = 0

    def __iter__(self):
        self._served = self._share.start // max(self.batch_size, 1)
        for batch in super().__iter__():
            self._served += 1
            yield batch

    def state_dict(self) -> dict:
        return {"batches": self._served}

    def load_state_dict(self, state: dict) -> None:
        batches = int(state.get("batches", 0))
        self._share.start = batches * self.batch_size if batches < len(self) else 0


def _rng_state(generators) -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "generators": [g.get_state() for g in generators]}


def _set_rng_state(state: dict, generators) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    for g, s in zip(generators, state.get("generators", [])):
        g.set_state(s)


def _quiet_lightning() -> None:
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for msg in (".*validation_step.*val_dataloader.*", ".*LeafSpec.*", ".*does not have many workers.*",
                ".*Experiment logs directory.*", ".*Checkpoint directory.*exists.*", ".*num_nodes.*",
                ".*sync_dist=True.*when logging on epoch level.*",
                ".*module\\(s\\) in eval mode at the start of training.*"):  # pretrained CREPE's frozen batch norms
        warnings.filterwarnings("ignore", message=msg)
    os.environ.setdefault("LITLOGGER_DISABLE_TIPS", "1")


def _lightning_strategy(strategy: str) -> str:
    """The strategy :func:`fit` gives Lightning: a frozen critic (score-supervised step 2) or a separator's
    unused heads leave parameters without a gradient in some steps; plain DDP refuses that, so ``ddp`` is
    DDP with its unused-parameter search on."""
    return "ddp_find_unused_parameters_true" if strategy == "ddp" else strategy


def check_engine(accelerator: str = "cpu", devices=1, strategy: str = "auto", num_nodes: int = 1) -> None:
    """Lightning's accelerator, devices, strategy and nodes checked before any work, by building the
    Trainer :func:`fit` would (it spawns nothing until it fits): ``--accelerator gpu`` on a machine without
    one, an unknown strategy or more devices than there are is a one-line error naming the options (it
    was Lightning's traceback at the first stage, after the data was prepared)."""
    import lightning.pytorch as L

    cores = os.cpu_count() or 1
    if accelerator == "cpu" and isinstance(devices, int) and devices > cores:  # Lightning starts them all
        raise WeakmirError(f"--devices {devices} on cpu: this machine has {cores} CPU cores; give --devices "
                           f"{cores} or fewer")
    _quiet_lightning()
    try:
        L.Trainer(accelerator=accelerator, devices=devices, num_nodes=num_nodes, logger=False,
                  strategy=_lightning_strategy(strategy), enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False)
    except Exception as e:  # noqa: BLE001 - Lightning raises MisconfigurationException, ValueError, RuntimeError
        msg = " ".join(str(e).split())
        raise WeakmirError(f"--accelerator {accelerator} --devices {devices} --strategy {strategy} --num-nodes "
                           f"{num_nodes}: {msg}; on this machine use --accelerator cpu --devices 1") from None


def _loggers(run_dir: Path | None):
    """A CSV logger always (in ``run_dir/logs``, else off), TensorBoard's too when it is installed."""
    if run_dir is None:
        return False
    from lightning.pytorch.loggers import CSVLogger

    logs = run_dir / "logs"
    attempt = len([p for p in logs.glob("version_*")]) if logs.is_dir() else 0
    loggers = [CSVLogger(str(run_dir), name="logs", version=attempt)]
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(run_dir), name="logs", version=attempt, default_hp_metric=False))
    except ImportError:
        pass
    return loggers


def fit(model: torch.nn.Module, step, train_set, max_steps: int, batch_size: int = 8, lr: float = 1e-3,
        optimizer: str = "adam", weight_decay: float = 0.0, val_set=None, num_workers: int = 0, seed: int = 0,
        progress: bool = False, accelerator: str = "cpu", lr_patience: int | None = None, lr_factor: float = 0.5,
        stop_patience: int | None = None, run_dir=None, checkpoint_every: int = 100, devices=1,
        strategy: str = "auto", num_nodes: int = 1, generators=(), lr_schedule: dict | None = None,
        keep_best: bool = False) -> FitResult:
    """Train ``model`` for at most ``max_steps`` optimiser steps; returns the loss history.

    ``lr_patience`` / ``stop_patience`` (epochs without a better validation loss) need ``val_set``.
    ``run_dir``: checkpoint there every ``checkpoint_every`` steps and resume from it (module
    docstring). ``generators``: ``torch.Generator`` objects the step draws from, saved and restored
    with the checkpoint. ``batch_size`` is global: it must divide by the number of processes.
    ``lr_schedule``: the learning rate per epoch, :func:`lr_factor` (``{"every": 30, "factor": 0.5}``
    halves it every 30 epochs; ``{"up": 10, "down": 50, "epochs": 100}`` ramps it up and down,
    weak-mic_gururani_thesis Appendix A; any other key is an error, :func:`check_lr_schedule`). ``keep_best`` (needs ``val_set``): the model ends with the
    weights of the epoch with the lowest validation loss (kept in the resume checkpoint too).
    """
    if (lr_patience or stop_patience or keep_best) and val_set is None:
        raise WeakmirError("lr_patience / stop_patience / keep_best need a validation set (val_set)")
    if lr_schedule and lr_patience:
        raise WeakmirError("give lr_schedule or lr_patience, not both")
    check_lr_schedule(lr_schedule, "lr_schedule")
    if max_steps < 1 or batch_size < 1 or checkpoint_every < 1:
        raise WeakmirError(f"max_steps {max_steps}, batch_size {batch_size} and checkpoint_every "
                           f"{checkpoint_every} must be positive")
    try:
        import lightning as L
    except ImportError as e:
        raise WeakmirError(f"training needs lightning ({e}); run: pip install lightning") from e

    result = FitResult()
    generators = list(generators)
    run_dir = Path(run_dir) if run_dir is not None else None
    last = run_dir / "last.ckpt" if run_dir is not None else None

    class _Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model
            self.history = {"losses": [], "val_losses": [], "lrs": []}
            self._pending = False
            self.best = None  # (validation loss, epoch, state dict) of the best epoch, with keep_best

        def train_dataloader(self):
            world = self.trainer.world_size
            if batch_size % world:
                raise WeakmirError(f"batch size {batch_size} does not divide over {world} processes; "
                                   f"give a multiple of {world}")
            return ResumableLoader(train_set, batch_size // world, self.trainer.global_rank, world,
                                   num_workers=num_workers)

        def training_step(self, batch, batch_idx):
            loss, logs = step(self.model, batch)
            self.log("train_loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True,
                     sync_dist=self.trainer.world_size > 1, batch_size=batch_size)
            return loss

        def on_train_batch_end(self, outputs, batch, batch_idx):
            self.history["losses"].append(float(self.trainer.callback_metrics["train_loss"]))
            if last is not None and (self.trainer.global_step % checkpoint_every == 0 or self._pending):
                # the last batch of an epoch is followed by its validation and the plateau schedule, which a
                # checkpoint taken there would miss on resume: that checkpoint waits for the next mid-epoch step
                if batch_idx + 1 < self.trainer.num_training_batches:
                    self._save()
                else:
                    self._pending = True

        def _save(self):
            """``last.ckpt``, written beside and then renamed (a kill mid-write leaves the previous one)."""
            self._pending = False
            tmp = last.with_name(".last.ckpt.tmp")
            self.trainer.save_checkpoint(str(tmp))
            if self.trainer.is_global_zero:
                os.replace(tmp, last)
            self.trainer.strategy.barrier()

        def on_train_end(self):
            if last is not None:
                self._save()

        def on_validation_epoch_start(self):
            self._val = []

        def validation_step(self, batch, batch_idx):
            loss, _ = step(self.model, batch)
            self._val.append(float(loss.detach()))
            return loss

        def on_validation_epoch_end(self):
            if self.trainer.sanity_checking or not self._val:
                return
            v = sum(self._val) / len(self._val)
            self.history["val_losses"].append(v)
            self.history["lrs"].append(float(self.trainer.optimizers[0].param_groups[0]["lr"]))
            self.log("val_loss", v, prog_bar=True)
            if keep_best and (self.best is None or v < self.best[0]):
                self.best = (v, len(self.history["val_losses"]) - 1,
                             {k: t.detach().clone() for k, t in self.model.state_dict().items()})

        def on_train_epoch_start(self):
            if hasattr(train_set, "set_epoch"):
                train_set.set_epoch(self.current_epoch)

        def on_train_start(self):  # a run resumed mid-epoch starts without on_train_epoch_start
            self.on_train_epoch_start()

        def on_save_checkpoint(self, checkpoint):
            checkpoint["weakmir"] = {"history": self.history, "rng": _rng_state(generators), "best": self.best}

        def on_load_checkpoint(self, checkpoint):
            state = checkpoint.get("weakmir", {})
            self.history = {k: list(v) for k, v in state.get("history", self.history).items()}
            self.best = state.get("best")
            if "rng" in state:
                _set_rng_state(state["rng"], generators)

        def configure_optimizers(self):
            # a model may give parts their own learning rate (``param_groups(lr)``: torch's list of groups)
            params = self.model.param_groups(lr) if hasattr(self.model, "param_groups") else self.model.parameters()
            if optimizer == "adam":
                opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
            elif optimizer == "adamw":
                opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
            else:
                raise WeakmirError(f"unknown optimizer {optimizer!r}; use adam or adamw")
            if lr_schedule:
                steps_per_epoch = max(len(train_set) // batch_size, 1)
                sched = torch.optim.lr_scheduler.LambdaLR(opt, _LrLambda(lr_schedule, steps_per_epoch))
                return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}
            if not lr_patience:
                return opt
            # torch's patience counts the bad epochs *before* the one that triggers: "halve after two
            # epochs without improvement" is patience 1
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=lr_factor,
                                                                 patience=max(lr_patience - 1, 0))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": plateau, "monitor": "val_loss",
                                                       "interval": "epoch", "frequency": 1}}

    strategy = _lightning_strategy(strategy)
    _quiet_lightning()
    L.seed_everything(seed, workers=True, verbose=False)
    callbacks = []
    if stop_patience:
        from lightning.pytorch.callbacks import EarlyStopping

        stopper = EarlyStopping(monitor="val_loss", mode="min", patience=stop_patience, check_finite=True)
        callbacks.append(stopper)
    trainer = L.Trainer(max_steps=max_steps, max_epochs=-1, accelerator=accelerator, devices=devices,
                        strategy=strategy, num_nodes=num_nodes, logger=_loggers(run_dir),
                        enable_checkpointing=False, enable_progress_bar=progress, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=1.0 if val_set is not None else 0,
                        callbacks=callbacks, use_distributed_sampler=False, log_every_n_steps=1,
                        default_root_dir=str(run_dir) if run_dir is not None else None)
    module = _Module()
    resume = None
    if last is not None and last.is_file():
        resume = str(last)
        try:
            result.resumed_from = int(torch.load(resume, map_location="cpu", weights_only=False)["global_step"])
        except Exception as e:  # noqa: BLE001
            raise WeakmirError(f"{last}: cannot read the resume checkpoint ({e}); delete it to start over") from e
    model.train()  # fit() leaves models in eval mode; a model trained again (fine-tuning) starts in train mode
    # every process scores the whole validation set: one val_loss everywhere
    val_loader = (torch.utils.data.DataLoader(val_set, batch_size=batch_size, num_workers=num_workers,
                                              generator=torch.Generator())
                  if val_set is not None else None)
    try:
        trainer.fit(module, val_dataloaders=val_loader, ckpt_path=resume, weights_only=False)  # our own file
    except SystemExit:
        # Lightning answers Ctrl-C / SIGTERM with sys.exit(1) after its teardown; give the caller the
        # interrupt back, so it reports it (the resume checkpoint of run_dir is the last one saved)
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise
    if keep_best and module.best is not None:
        model.load_state_dict(module.best[2])
        result.best_epoch = int(module.best[1])
    result.losses, result.val_losses, result.lrs = (list(module.history[k]) for k in ("losses", "val_losses", "lrs"))
    result.steps = int(trainer.global_step)
    result.stopped_early = bool(stop_patience) and stopper.stopped_epoch > 0
    result.rank = int(trainer.global_rank)
    model.eval()
    return result


LR_SCHEDULE_KEYS = ({"every", "factor"}, {"up", "down", "epochs"})


def check_lr_schedule(schedule: dict, where: str) -> None:
    """Refuse a ``schedule`` that is not one of :func:`lr_factor`'s two forms (a key outside the form's, or
    ``factor`` without ``every``): a one-line error that starts with ``where``."""
    keys = set(schedule or {})
    if (keys and not any(keys <= form for form in LR_SCHEDULE_KEYS)) or ("factor" in keys and "every" not in keys):
        raise WeakmirError(f"{where}: {dict(schedule)} is not a learning-rate schedule; give {{every: N, factor: F}} "
                           "or {up: U, down: D, epochs: E}")


def lr_factor(schedule: dict, epoch: float) -> float:
    """The learning-rate factor at ``epoch`` (from 0; fractional within an epoch) under ``schedule``:

    * ``{"every": n, "factor": f}``: ``f ** (epoch // n)`` (weak-mic_gururani_thesis §5.4.2: halved every 30);
    * ``{"up": u, "down": d, "epochs": e}``: the sigmoid ramp-up ``exp(-5 (1 - x)²)`` over the first ``u``
      epochs (eq. A.1) and the ramp-down ``exp(-12.5 x²)`` over the last ``d`` of ``e`` (eq. A.2 is
      printed as ``1 - exp(-12.5 x²)``, which rises from 0 to 1; read as the part taken away, as in
      Laine & Aila's schedule that Tarvainen & Valpola use).
    """
    if "every" in schedule:
        return float(schedule.get("factor", 0.5)) ** (int(epoch) // int(schedule["every"]))
    w = 1.0
    up, down, total = int(schedule.get("up", 0)), int(schedule.get("down", 0)), int(schedule.get("epochs", 0))
    if up:
        w *= sigmoid_rampup(epoch / up)
    if down and total:
        w *= rampdown((epoch - (total - down)) / down)
    return w


def sigmoid_rampup(x: float) -> float:
    """eq. A.1: ``exp(-5 (1 - x)²)`` for ``x`` clipped to [0, 1] (0.0067 at 0, 1 at 1)."""
    x = min(max(float(x), 0.0), 1.0)
    return float(np.exp(-5.0 * (1.0 - x) ** 2))


def rampdown(x: float) -> float:
    """The ramp-down factor ``exp(-12.5 x²)`` for ``x`` clipped to [0, 1] (1 at 0, 3.7e-6 at 1; see :func:`lr_factor`)."""
    x = min(max(float(x), 0.0), 1.0)
    return float(np.exp(-12.5 * x ** 2))


class _LrLambda:
    """``LambdaLR``'s function, stepped every optimiser step: step -> :func:`lr_factor` of its epoch."""

    def __init__(self, schedule: dict, steps_per_epoch: int):
        self.schedule, self.steps_per_epoch = dict(schedule), int(steps_per_epoch)

    def __call__(self, step: int) -> float:
        return lr_factor(self.schedule, step / self.steps_per_epoch)


def global_rank() -> int:
    """This process's global rank as Lightning knows it (0 in a single process; in the processes its DDP
    launcher starts, from their environment, and after ``fit`` from the strategy)."""
    try:
        from lightning.pytorch.utilities import rank_zero_only
    except ImportError:
        return 0
    return int(getattr(rank_zero_only, "rank", 0) or 0)


class FitRunner:
    """Trains a stage with :func:`weakmir.train.engine.fit` and keeps nothing: the runner a method's stages
    use when no stage runner (cache, resume, workers: :class:`weakmir.experiments.stages.StageRunner`) is
    given. ``curves``: ``{stage: FitResult}``."""

    def __init__(self):
        self.curves = {}

    def train(self, name, model, step, data, steps, batch_size, lr, settings, kwargs, valid=None, trains=None,
              also=None, seed=0, generators=(), **fit_kwargs):
        self.curves[name] = fit(trains or model, step, data, steps, batch_size, lr, val_set=valid, seed=seed,
                                generators=generators, **fit_kwargs)
        return model


def write_history_csv(path, curves: dict) -> Path:
    """``RUN/metrics.csv``: one row per (stage, step) with the logged ``train_loss``, and per epoch
    ``val_loss`` / ``lr`` where the stage had a validation set. ``curves``: ``{stage: FitResult}``."""
    import csv
    import io

    from ..files import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["stage", "step", "train_loss", "epoch", "val_loss", "lr"])
    for stage, h in curves.items():
        for i, loss in enumerate(h.losses):
            w.writerow([stage, i + 1, f"{loss:.6g}", "", "", ""])
        for e, (v, lr_) in enumerate(zip(h.val_losses, h.lrs)):
            w.writerow([stage, "", "", e, f"{v:.6g}", f"{lr_:.6g}"])
    return atomic_write_text(path, buf.getvalue())
