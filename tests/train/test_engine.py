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


# -- resume and DDP (tests/train/fit_tiny.py, run as a script: Lightning's DDP launcher re-runs it) -----------

import os  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

SCRIPT = Path(__file__).with_name("fit_tiny.py")


def _run(run_dir, out, *args, check=True):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    p = subprocess.run([sys.executable, str(SCRIPT), str(run_dir), str(out), *map(str, args)], capture_output=True,
                       text=True, timeout=300, env=env)
    if check and p.returncode:
        raise AssertionError(f"fit_tiny.py {args} exited {p.returncode}:\n{p.stderr[-3000:]}")
    return p


def test_a_run_killed_at_a_random_step_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    """Dropout (global RNG), a torch.Generator in the step, the plateau schedule and early stopping all
    come back from the checkpoint: the resumed run is bit-identical, loss history included."""
    _run(tmp_path / "whole", tmp_path / "whole.pt")
    kill = random.randint(6, 28)  # 30 steps, 4 per epoch, a checkpoint every 4 (deferred off an epoch's end)
    p = _run(tmp_path / "killed", tmp_path / "killed.pt", "--kill-at", kill, check=False)
    assert p.returncode == -9 and not (tmp_path / "killed.pt").exists(), f"kill at step {kill}: {p.returncode}"
    assert (tmp_path / "killed" / "last.ckpt").is_file()
    _run(tmp_path / "killed", tmp_path / "killed.pt")  # the same command again
    a, b = torch.load(tmp_path / "whole.pt"), torch.load(tmp_path / "killed.pt")
    assert a["resumed_from"] is None and 0 < b["resumed_from"] < kill, kill
    assert b["steps"] == a["steps"] == 30
    assert b["losses"] == a["losses"] and b["val_losses"] == a["val_losses"] and b["lrs"] == a["lrs"], kill
    for k in a["state"]:
        assert torch.equal(a["state"][k], b["state"][k]), f"kill at step {kill}: {k} differs"
    assert [p.name for p in (tmp_path / "killed").iterdir() if p.name.startswith(".")] == []  # no temp files left
    # a second attempt's CSV log is its own: the first one's is kept
    assert sorted(p.name for p in (tmp_path / "killed" / "logs").iterdir()) == ["version_0", "version_1"]


def test_two_ddp_processes_follow_the_one_process_loss_curve_at_the_same_global_batch(tmp_path):
    """2 CPU processes (gloo), 4 examples each per step, against 1 process with 8: each rank draws every other
    example of the epoch, so the steps see the same examples and the mean gradient is the same up to float
    rounding (tolerance 1e-5 on the loss, 1e-5 on the weights after 30 steps)."""
    _run(tmp_path / "one", tmp_path / "one.pt", "--noise", 0)
    _run(tmp_path / "two", tmp_path / "two.pt", "--noise", 0, "--devices", 2)
    a, b = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert len(b["losses"]) == len(a["losses"]) == 30
    assert b["losses"] == pytest.approx(a["losses"], abs=1e-5)
    assert b["val_losses"] == pytest.approx(a["val_losses"], abs=1e-5)
    assert b["losses"][-1] < b["losses"][0]
    for k in a["state"]:
        assert torch.allclose(a["state"][k], b["state"][k], atol=1e-5), k
    # the files appear once: one checkpoint, one CSV log (rank 0's), no leftovers of rank 1
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["last.ckpt", "logs"]
    assert sorted(p.name for p in (tmp_path / "two" / "logs").iterdir()) == ["version_0"]
    rows = (tmp_path / "two" / "logs" / "version_0" / "metrics.csv").read_text().splitlines()
    assert sum(1 for r in rows if r.split(",")[2]) == 1 + 30  # header + one train_loss row per step


def test_share_sampler_splits_an_epoch_into_disjoint_equal_shares_and_resumes_mid_epoch():
    from weakmir.train.engine import ResumableLoader, ShareSampler

    shares = [list(ShareSampler(10, r, 3)) for r in range(3)]
    assert shares == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]  # disjoint, equal length (9 of 10 used)
    loader = ResumableLoader(list(range(12)), batch_size=2)
    it = iter(loader)
    next(it), next(it)
    state = loader.state_dict()
    assert state == {"batches": 2}
    fresh = ResumableLoader(list(range(12)), batch_size=2)
    fresh.load_state_dict(state)
    assert len(fresh) == 6 and [b.tolist() for b in fresh] == [[4, 5], [6, 7], [8, 9], [10, 11]]
    assert [b.tolist() for b in fresh][0] == [0, 1]  # the next epoch starts at the beginning
