"""The engine's plateau schedule and early stopping (score-supervised_hung2021 §3.2: halve the learning
rate after 2 epochs without a better validation loss, stop after 10)."""

import pytest
import torch

from weakmir.errors import WeakmirError
from weakmir.train.engine import fit


class _Targets(torch.utils.data.Dataset):
    def __init__(self, target: float, n: int):
        self.target, self.n = target, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.tensor([self.target])


def _step(model, batch):
    loss = ((model.w - batch) ** 2).mean()
    return loss, {"loss": loss.detach()}


class _Scalar(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))


def test_validation_loss_that_only_worsens_halves_the_lr_after_two_epochs_and_stops_after_patience():
    """Training pulls w towards +1, validation wants -1: every epoch after the first is a bad one."""
    model = _Scalar()
    r = fit(model, _step, _Targets(1.0, 8), max_steps=1000, batch_size=4, lr=0.05, val_set=_Targets(-1.0, 4),
            lr_patience=2, stop_patience=4)
    assert all(b > a for a, b in zip(r.val_losses, r.val_losses[1:]))  # never improves after epoch 0
    assert r.stopped_early and len(r.val_losses) == 5  # the best epoch + 4 bad ones
    assert r.steps == 5 * 2 < 1000  # 2 steps per epoch
    # the lr seen by epoch k's validation: halved once two bad epochs (1, 2) have passed; the count then
    # restarts, so the next halving comes after epoch 4 (and shows from epoch 5 on)
    assert r.lrs == pytest.approx([0.05, 0.05, 0.05, 0.025, 0.025])
    assert r.losses[-1] < r.losses[0]


def test_an_improving_validation_loss_keeps_the_lr_and_runs_to_max_steps():
    model = _Scalar()
    r = fit(model, _step, _Targets(1.0, 8), max_steps=12, batch_size=4, lr=0.05, val_set=_Targets(1.0, 4),
            lr_patience=2, stop_patience=2)
    assert r.steps == 12 and not r.stopped_early
    assert r.lrs == [0.05] * 6
    assert all(b < a for a, b in zip(r.val_losses, r.val_losses[1:]))


def test_schedules_without_a_validation_set_are_refused():
    with pytest.raises(WeakmirError, match="val_set"):
        fit(_Scalar(), _step, _Targets(1.0, 8), max_steps=2, lr_patience=2)
