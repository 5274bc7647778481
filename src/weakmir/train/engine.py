"""The training engine: PyTorch Lightning runs the loop; a method supplies a step function.

``fit(model, step, train_set, ...)`` wraps ``model`` and ``step(model, batch) ->
(loss, logs)`` in a LightningModule and runs ``lightning.Trainer`` (CPU or one
GPU here; DDP across devices is Lightning's). Epoch-seeded datasets
(:class:`weakmir.data.mixing.MixDataset`) get ``set_epoch`` every epoch. The
per-step training loss is returned so recipes and tests can check it went down.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from ..errors import WeakmirError


@dataclass
class FitResult:
    losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    steps: int = 0


def fit(model: torch.nn.Module, step, train_set, max_steps: int, batch_size: int = 8, lr: float = 1e-3,
        optimizer: str = "adam", weight_decay: float = 0.0, val_set=None, num_workers: int = 0, seed: int = 0,
        progress: bool = False, accelerator: str = "cpu") -> FitResult:
    """Train ``model`` for ``max_steps`` optimiser steps; returns the loss history."""
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

        def validation_step(self, batch, batch_idx):
            loss, _ = step(self.model, batch)
            result.val_losses.append(float(loss))
            return loss

        def on_train_epoch_start(self):
            if hasattr(train_set, "set_epoch"):
                train_set.set_epoch(self.current_epoch)

        def configure_optimizers(self):
            if optimizer == "adam":
                return torch.optim.Adam(self.model.parameters(), lr=lr, weight_decay=weight_decay)
            if optimizer == "adamw":
                return torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=weight_decay)
            raise WeakmirError(f"unknown optimizer {optimizer!r}; use adam or adamw")

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
    trainer = L.Trainer(max_steps=max_steps, accelerator=accelerator, devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=progress, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=1.0 if val_loader else 0)
    model.train()  # fit() leaves models in eval mode; a model trained again (fine-tuning) starts in train mode
    trainer.fit(_Module(), loader, val_loader)
    result.steps = int(trainer.global_step)
    model.eval()
    return result
