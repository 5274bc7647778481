"""A tiny training run for the engine's kill-and-resume and DDP tests (run as a script).

    python fit_tiny.py RUN_DIR OUT.pt [--kill-at STEP] [--devices N] [--steps N] [--batch N] [--every N]

Trains a small MLP with dropout (the global RNG) and a noise draw from a torch.Generator (``generators``)
on an epoch-seeded regression set, with a validation set, the plateau schedule and early stopping, then
saves ``{"state", "losses", "val_losses", "lrs", "steps", "resumed_from"}`` to OUT.pt (rank 0 only).
``--kill-at`` SIGKILLs the process inside step STEP (1-based), as a crash would.
"""

import argparse
import os
import signal

import numpy as np
import torch

from weakmir.train.engine import fit


class EpochSet(torch.utils.data.Dataset):
    def __init__(self, n, seed):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, e):
        self.epoch = e

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        r = np.random.default_rng([self.seed, self.epoch, i])
        x = r.standard_normal(8).astype(np.float32)
        return {"x": torch.from_numpy(x), "y": torch.tensor([float(np.sin(x[:3]).sum())])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("out")
    ap.add_argument("--kill-at", type=int, default=0)
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--noise", type=float, default=0.05, help="0: no dropout and no generator draw")
    a = ap.parse_args()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Dropout(0.2 if a.noise else 0.0),
                                torch.nn.Linear(32, 1))
    gen = torch.Generator().manual_seed(7)
    calls = {"n": 0}

    def step(m, batch):
        if m.training:
            calls["n"] += 1
            if a.kill_at and calls["n"] == a.kill_at and os.environ.get("LOCAL_RANK", "0") == "0":
                os.kill(os.getpid(), signal.SIGKILL)
        if os.environ.get("FIT_DEBUG") and m.training: print("step", calls["n"], float(batch["x"][0, 0]), float(next(m.parameters()).flatten()[0]), flush=True)
        noise = a.noise * torch.randn(batch["y"].shape, generator=gen) if a.noise and m.training else 0.0
        loss = ((m(batch["x"]) - batch["y"] - noise) ** 2).mean()
        return loss, {"loss": loss.detach()}

    r = fit(model, step, EpochSet(32, 1), max_steps=a.steps, batch_size=a.batch, lr=0.01, val_set=EpochSet(8, 99),
            lr_patience=2, stop_patience=20, run_dir=a.run_dir, checkpoint_every=a.every, devices=a.devices,
            strategy="ddp" if a.devices > 1 else "auto", generators=[gen], seed=3)
    if r.rank == 0:
        torch.save({"state": model.state_dict(), "losses": r.losses, "val_losses": r.val_losses, "lrs": r.lrs,
                    "steps": r.steps, "resumed_from": r.resumed_from}, a.out)


if __name__ == "__main__":
    main()
