"""weakmir train on the user's own manifest: self-refine on a manifest from weakmir refine, score-supervised on
a synth --preset slakh manifest. Each: the manifest is checked first, the loss went down, the artifacts are
there, the checkpoints separate / transcribe a file, a re-run loads every stage, a killed run resumes."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from weakmir.cli import main
from weakmir.data.manifest import Manifest
from weakmir.train import checkpoint


def _cli(*args):
    return [sys.executable, "-m", "weakmir", *map(str, args)]


@pytest.fixture(scope="module")
def refined(pop_corpus, tmp_path_factory):
    """A manifest written by weakmir refine (two rounds of a seconds-long classifier)."""
    out, _, _, _ = pop_corpus
    dest = tmp_path_factory.mktemp("refined")
    assert main(["refine", str(out), "-o", str(dest), "--iterations", "1", "--steps", "6", "--batch-size", "4",
                 "--quiet"]) == 0
    return dest


SR_SETS = ["--set", "separator.steps=12", "--set", "separator.examples_per_epoch=8", "--set", "sample_rate=22050"]


@pytest.fixture(scope="module")
def sr_run(refined, tmp_path_factory):
    """One uninterrupted ``weakmir train self-refine`` run (its folder, its stdout)."""
    import contextlib
    import io

    run = tmp_path_factory.mktemp("sr") / "run"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["train", "self-refine", str(refined), "-o", str(run), "--recipe", "tiny", *SR_SETS,
                     "--checkpoint-every", "3", "--quiet"]) == 0
    return run, out.getvalue()


def test_train_self_refine_on_a_refined_manifest(refined, sr_run, tmp_path, capsys):
    run, printed = sr_run
    assert "SDR avg" in printed
    r = json.loads((run / "results.json").read_text())
    s = r["summary"]
    assert s["eval_split"] == "test" and np.isfinite(s["sdr_avg"]) and set(r["sdr"]) == {*s["sources"], "avg"}
    assert r["recipe"]["separator"]["steps"] == 12  # the resolved recipe, --set applied
    losses = r["learning_curves"]["separator"]
    assert len(losses) == 12 and np.mean(losses[-3:]) < np.mean(losses[:3])
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len([x for x in rows if x.startswith("separator,")]) == 12
    assert (run / "report.html").is_file() and (run / "report_files" / "curve.png").is_file()
    model, meta = checkpoint.load(run / "checkpoints" / "separator.ckpt")
    assert meta["config"]["recipe"]["separator"] == r["recipe"]["separator"]
    # the checkpoint separates a file
    m = Manifest.read(refined)
    mix = m.resolve(m.split("test")[0].mixture)
    assert main(["separate", str(run / "checkpoints" / "separator.ckpt"), str(mix), "-o", str(tmp_path / "sep")]) == 0
    assert sorted(p.stem for p in (tmp_path / "sep" / mix.stem).glob("*.wav")) == sorted(model.sources)
    # the same command again loads the stage and writes the same results
    capsys.readouterr()
    assert main(["train", "self-refine", str(refined), "-o", str(run), "--recipe", "tiny", *SR_SETS]) == 0
    assert "separator: loaded separator.ckpt" in capsys.readouterr().out
    assert json.loads((run / "results.json").read_text())["sdr"] == r["sdr"]


ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # torch reads them at start-up


def test_train_self_refine_stopped_mid_stage_resumes_to_the_same_weights(refined, tmp_path):
    """SIGTERM once a resume checkpoint exists: exit 130, a line saying a re-run resumes, no temporary file
    left; the same command finishes the stage from the checkpoint, and the weights equal those of an
    uninterrupted run of the same recipe and seed. (SIGKILL's resume: tests/train/test_engine.py.)

    Both runs use one intra-op thread (``ONE_THREAD``). With two, the X-UMX's weights came out different in
    their last bits in 2 of 8 *uninterrupted* runs while another process kept a core busy (the polling loop
    below is one), so a two-thread comparison tested the machine's load, not the resume."""
    def args(name):
        return ["train", "self-refine", refined, "-o", tmp_path / name, "--recipe", "tiny", *SR_SETS,
                "--checkpoint-every", "3", "--quiet"]

    whole = subprocess.run(_cli(*args("whole")), capture_output=True, text=True, timeout=900, env=ONE_THREAD)
    assert whole.returncode == 0, whole.stderr[-2000:]
    p = subprocess.Popen(_cli(*args("killed")), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=ONE_THREAD)
    resume = tmp_path / "killed" / "checkpoints" / ".resume"
    t0 = time.time()
    while not list(resume.glob("*/last.ckpt")) and p.poll() is None and time.time() - t0 < 240:
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    err = p.communicate(timeout=120)[1]
    if not list(resume.glob("*/last.ckpt")):
        pytest.fail("the run ended before its first resume checkpoint")
    assert p.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted;" in err and "re-run the same command to resume" in err
    left = [f for f in (tmp_path / "killed").rglob(".*") if f.name != ".resume"]
    assert not left, left  # atomic writes removed their temporary files
    assert not (tmp_path / "killed" / "checkpoints" / "separator.ckpt").exists()
    done = subprocess.run(_cli(*args("killed")[:-1]), capture_output=True, text=True, timeout=900, env=ONE_THREAD)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed at step" in done.stdout
    a = checkpoint.load(tmp_path / "whole" / "checkpoints" / "separator.ckpt")[0].state_dict()
    b = checkpoint.load(tmp_path / "killed" / "checkpoints" / "separator.ckpt")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not any(resume.iterdir())  # the resume folder goes once the stage is saved


SS_SETS = ["--set", "train.steps=[12,6,4]", "--set", "supervised_steps=4"]


def test_train_score_supervised_on_a_slakh_manifest(slakh_corpus, tmp_path, capsys):
    corpus, _, _, _ = slakh_corpus
    run = tmp_path / "run"
    assert main(["train", "score-supervised", str(corpus), "-o", str(run), "--recipe", "tiny", *SS_SETS,
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "step 3" in out and out.count("\n") == 1  # --quiet: the summary line alone
    r = json.loads((run / "results.json").read_text())
    s = r["summary"]
    assert s["eval_split"] == "test" and sorted(s["instruments"]) == ["bass", "distorted_guitar", "piano"]
    assert list(r["sisdr"]) == ["input mixture", "step 2 (c-mix + h-mix)", "step 3 (fine-tune + AML + ATL)",
                                "supervised"]
    assert r["workers"] == {"workers": 2, "failed": {}}
    c = r["learning_curves"]
    assert len(c["transcriptor step 1"]) == 12 and np.mean(c["transcriptor step 1"][-3:]) < np.mean(c["transcriptor step 1"][:3])
    assert len(c["fine-tune + AML + ATL"]) == 4 and len(c["supervised"]) == 4
    ckpts = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))
    assert ckpts == ["fine-tune+AML+ATL.ckpt", "fine-tune+AML+ATL_transcriptor.ckpt", "isolated_c-mix+h-mix.ckpt",
                     "supervised.ckpt", "transcriptor_step_1.ckpt"]
    m = Manifest.read(corpus)
    mix = m.resolve(m.split("test")[0].mixture)
    assert main(["transcribe", str(run / "checkpoints" / "fine-tune+AML+ATL_transcriptor.ckpt"), str(mix), "-o",
                 str(tmp_path / "tr")]) == 0
    assert {p.name for p in (tmp_path / "tr" / mix.stem).iterdir()} >= {"piano.mid", "bass.mid", "pianoroll.png"}
    assert main(["separate", str(run / "checkpoints" / "fine-tune+AML+ATL.ckpt"), str(mix), "-o",
                 str(tmp_path / "sep")]) == 0
    assert len(list((tmp_path / "sep" / mix.stem).glob("*.wav"))) == 3
    # the same command again trains nothing: the workers and then the main process load all four stages
    capsys.readouterr()
    assert main(["train", "score-supervised", str(corpus), "-o", str(run), "--recipe", "tiny", *SS_SETS]) == 0
    log = capsys.readouterr().out
    main_log = [x for x in log.splitlines() if not x.startswith("[worker")]
    assert sum(": loaded " in x for x in main_log) == 4 and " steps in " not in log


def test_train_checks_the_manifest_before_any_work(pop_corpus, tmp_path, capsys):
    corpus, _, _, _ = pop_corpus
    d = json.loads((corpus / "manifest.json").read_text())
    for t in d["tracks"]:
        for s in t["stems"]:
            s["notes"] = None
    (corpus / "noscore.json").write_text(json.dumps(d))
    run = tmp_path / "run"
    assert main(["train", "score-supervised", str(corpus / "noscore.json"), "-o", str(run), "--recipe", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "noscore.json: no track in split train has a score; score-supervised needs notes per stem" in err
    assert err.count("\n") == 1 and not run.exists()
    for t in d["tracks"]:
        t["split"] = "test"
    (corpus / "notrain.json").write_text(json.dumps(d))
    assert main(["train", "self-refine", str(corpus / "notrain.json"), "-o", str(run), "--recipe", "tiny"]) == 2
    assert "no track in split train" in capsys.readouterr().err and not run.exists()
    assert main(["train", "self-refine", str(corpus), "-o", str(run), "--recipe", "tiny", "--set",
                 "separator.stepz=3"]) == 2
    assert "unknown key 'separator.stepz'" in capsys.readouterr().err and not run.exists()
    assert main(["train", "self-refine", str(corpus), "-o", str(run), "--recipe", "nope"]) == 2
    assert "unknown recipe 'nope' for self-refine; use one of paper, quick, tiny" in capsys.readouterr().err
    os.remove(corpus / "noscore.json")
    os.remove(corpus / "notrain.json")


def test_train_score_supervised_on_two_ddp_processes_writes_once(slakh_corpus, tmp_path):
    """The CLI under Lightning's DDP launcher (2 gloo processes, which re-run the command): every stage trains
    on both ranks (step 2's frozen critic leaves parameters without gradients: DDP's unused-parameter search is
    on), rank 0 alone scores and writes, and the summary line is printed once."""
    corpus, _, _, _ = slakh_corpus
    run = tmp_path / "run"
    p = subprocess.run(_cli("train", "score-supervised", corpus, "-o", run, "--recipe", "tiny", "--set",
                            "train.steps=[8,4,4]", "--set", "supervised_steps=4", "--devices", 2, "--strategy", "ddp",
                            "--quiet"), capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("weakmir train score-supervised:") == 1
    assert sorted(x.name for x in (run / "checkpoints").glob("*.ckpt")) == [
        "fine-tune+AML+ATL.ckpt", "fine-tune+AML+ATL_transcriptor.ckpt", "isolated_c-mix+h-mix.ckpt",
        "supervised.ckpt", "transcriptor_step_1.ckpt"]
    r = json.loads((run / "results.json").read_text())
    assert len(r["learning_curves"]["transcriptor step 1"]) == 8 and r["workers"] is None  # no workers under DDP
    rows = (run / "metrics.csv").read_text().splitlines()
    assert sum(1 for x in rows if x.startswith("transcriptor step 1,") and x.split(",")[2]) == 8
