"""The training engine: PyTorch Lightning runs the loop; a method supplies a step function.

``fit(model, step, train_set, ...)`` wraps ``model`` and ``step(model, batch) ->
(loss, logs)`` in a LightningModule and runs ``lightning.Trainer`` (CPU or one
GPU here; DDP across devices is Lightning's). Epoch-seeded datasets
(:class:`weakmir.data.mixing.MixDataset`) get ``set_epoch`` every epoch. The
per-step training loss is returned so recipes and tests can check it went down.

With a ``val_set``, the validation loss is computed after every epoch
(``len(train_set) // batch_size`` steps) and two schedules can use it:
``lr_patience`` halves (``lr_factor``) the learning rate once the validation
loss has not improved for that many consecutive epochs, ``stop_patience``
stops training once it has not improved for that many (score-supervised_hung2021
§3.2: 2 and 10). ``max_steps`` still bounds the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from ..errors import WeakmirError


@dataclass
class FitResult:
    losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)  # one per epoch (the mean over the val set)
    lrs: list[float] = field(default_factory=list)  # the learning rate at the end of each epoch
    steps: int = 0
    stopped_early: bool = False


def fit(model: torch.nn.Module, step, train_set, max_steps: int, batch_size: int = 8, lr: float = 1e-3,
        optimizer: str = "adam", weight_decay: float = 0.0, val_set=None, num_workers: int = 0, seed: int = 0,
        progress: bool = False, accelerator: str = "cpu", lr_patience: int | None = None, lr_factor: float = 0.5,
        stop_patience: int | None = None) -> FitResult:
    """Train ``model`` for at most ``max_steps`` optimiser steps; returns the loss history.

    ``lr_patience`` / ``stop_patience`` (epochs without a better validation loss) need ``val_set``.
    """
    if (lr_patience or stop_patience) and val_set is None:
        raise WeakmirError("lr_patience / stop_patience need a validation set (val_set)")
    try:
        import lightning as L
    except ImportError as e:
        raise WeakmirError(f"training needs lightning ({e}); run: pip install lightning") from e

    result = FitResult()

    class _Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model

        def training_step(self, batch, batch_idx):
            loss, logs = step(self.model, batch)
            result.losses.append(float(loss.detach()))
            return loss

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
            result.val_losses.append(v)
            result.lrs.append(float(self.trainer.optimizers[0].param_groups[0]["lr"]))
            self.log("val_loss", v, prog_bar=True)

        def on_train_epoch_start(self):
            if hasattr(train_set, "set_epoch"):
                train_set.set_epoch(self.current_epoch)

        def configure_optimizers(self):
            if optimizer == "adam":
                opt = torch.optim.Adam(self.model.parameters(), lr=lr, weight_decay=weight_decay)
            elif optimizer == "adamw":
                opt = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=weight_decay)
            else:
                raise WeakmirError(f"unknown optimizer {optimizer!r}; use adam or adamw")
            if not lr_patience:
                return opt
            # torch's patience counts the bad epochs *before* the one that triggers: "halve after two
            # epochs without improvement" is patience 1
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=lr_factor,
                                                                 patience=max(lr_patience - 1, 0))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": plateau, "monitor": "val_loss",
                                                       "interval": "epoch", "frequency": 1}}

    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*validation_step.*val_dataloader.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    os.environ.setdefault("LITLOGGER_DISABLE_TIPS", "1")
    L.seed_everything(seed, workers=True, verbose=False)
    loader = torch.utils.data.DataLoader(train_set, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                         drop_last=len(train_set) >= batch_size)
    val_loader = (torch.utils.data.DataLoader(val_set, batch_size=batch_size, num_workers=num_workers)
                  if val_set is not None else None)
    callbacks = []
    if stop_patience:
        from lightning.pytorch.callbacks import EarlyStopping

        stopper = EarlyStopping(monitor="val_loss", mode="min", patience=stop_patience, check_finite=True)
        callbacks.append(stopper)
    trainer = L.Trainer(max_steps=max_steps, max_epochs=-1, accelerator=accelerator, devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=progress, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=1.0 if val_loader else 0, callbacks=callbacks)
    model.train()  # fit() leaves models in eval mode; a model trained again (fine-tuning) starts in train mode
    trainer.fit(_Module(), loader, val_loader)
    result.steps = int(trainer.global_step)
    result.stopped_early = bool(stop_patience) and stopper.stopped_epoch > 0
    model.eval()
    return result
