"""weakmir experiment score-supervised at the tiny preset: every stage once, the contract keys, a resumed
run that reloads every checkpoint and reproduces the tables, and (with ../shared/data) the Bach10 row."""

import json
import math

import numpy as np
import pytest
import torch

from weakmir.errors import WeakmirError
from weakmir.experiments import score_supervised as se

ROWS = ["input mixture", "supervised", "isolated c-mix", "isolated h-mix", "isolated c-mix + h-mix", "fine-tune",
        "fine-tune + AML", "fine-tune + ATL", "classifier baseline"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, shared_data_or_none):
    out = tmp_path_factory.mktemp("score_exp")
    bach10 = shared_data_or_none / "bach10" if shared_data_or_none else None
    r = se.experiment("tiny", out, progress=True, bach10=bach10, skip_bach10=bach10 is None)
    return out, r


@pytest.fixture(scope="module")
def shared_data_or_none():
    from pathlib import Path

    SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return SHARED_DATA if (SHARED_DATA / "bach10").is_dir() else None


def test_tiny_run_writes_the_contract_and_every_table_row(tiny_run):
    out, r = tiny_run
    on_disk = json.loads((out / "results.json").read_text())
    s = on_disk["summary"]
    for k in ("sisdr_mixture", "sisdr_supervised", "sisdr_best", "sisdr_classifier_baseline", "gap_closed"):
        assert math.isfinite(s[k]), k
    assert "bach10_sisdr_gain" in s
    t1 = on_disk["table1"]
    assert list(t1) == ROWS
    inst = on_disk["instruments"]
    assert sorted(inst) == ["bass", "distorted_guitar", "piano"]
    for row in t1.values():  # an instrument absent from the test tracks is NaN ("nan" in the JSON)
        assert float(row["avg"]) == pytest.approx(np.nanmean([float(row[k]) for k in inst]))
    weak = [k for k in ROWS if k.startswith(("isolated", "fine-tune"))]
    assert s["best"] in weak and s["sisdr_best"] == max(t1[k]["avg"] for k in weak)
    assert s["gap_closed"] == pytest.approx((s["sisdr_best"] - s["sisdr_mixture"])
                                            / (s["sisdr_supervised"] - s["sisdr_mixture"]))
    # Table 2: the step-1 transcriptor and the three step-3 ones, on mixtures and on isolated stems
    assert len(on_disk["table2"]) == 8
    for row in on_disk["table2"].values():
        assert 0 <= row["false_positive_rate"] <= 1
    html = (out / "report.html").read_text()
    # figures: 2 learning-curve plots, the mixture, the score and its transcription (piano rolls), per instrument
    # estimate / reference / harmonic mask, each a PNG beside the page and embedded in it
    pngs = sorted((out / "report_files").glob("*.png"))
    assert len(pngs) == 2 + 1 + 2 + 3 * len(inst)
    assert "Table 1" in html and html.count('<img src="data:image/png;base64,') == len(pngs)
    for p in pngs:
        assert f'href="report_files/{p.name}"' in html and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "input mixture" in md and md.count("](report_files/") == len(pngs)
    # the resolved recipe is in results.json and in every checkpoint
    assert on_disk["recipe"] == se.recipe("tiny")[1]
    from weakmir.train import checkpoint

    for p in (out / "checkpoints").glob("*.ckpt"):
        assert checkpoint.load(p)[1]["config"]["recipe"] == on_disk["recipe"], p.name
    # metrics.csv: the logged loss of every step of every stage
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0] == "stage,step,train_loss,epoch,val_loss,lr"
    assert sum(1 for row in rows if row.startswith("transcriptor step 1,") and row.split(",")[2]) == len(
        r["learning_curves"]["transcriptor step 1"])


def test_input_mixture_row_is_the_si_sdr_of_the_mixture_against_each_stem(tiny_run):
    """The mixture row recomputed from the corpus files with the closed-form SI-SDR."""
    import soundfile as sf
    import soxr

    from weakmir.data.manifest import Manifest

    out, r = tiny_run
    m = Manifest.read(out / "corpus" / "manifest.json")
    vals = {}
    for t in m.split("test"):
        mix, sr = sf.read(m.resolve(t.mixture), dtype="float64", always_2d=True)
        mix = soxr.resample(mix.mean(axis=1), sr, 16000)
        for s in t.stems:
            x, _ = sf.read(m.resolve(s.path), dtype="float64", always_2d=True)
            ref = soxr.resample(x.mean(axis=1), sr, 16000)[: len(mix)]
            if np.mean(ref ** 2) < 1e-8:
                continue
            a = np.dot(mix[: len(ref)], ref) / np.dot(ref, ref)
            e = mix[: len(ref)] - a * ref
            vals.setdefault(s.instruments[0], []).append(10 * np.log10(np.sum((a * ref) ** 2) / np.sum(e ** 2)))
    row = r["table1"]["input mixture"]
    for k, v in vals.items():
        assert row[k] == pytest.approx(np.mean(v), abs=0.05)


def test_stages_learn_and_a_rerun_reloads_every_checkpoint(tiny_run, capsys):
    out, r = tiny_run
    curves = r["learning_curves"]
    assert curves["transcriptor step 1"][-1] < curves["transcriptor step 1"][0]
    ckpts = sorted(p.name for p in (out / "checkpoints").glob("*.ckpt"))
    assert "fine-tune+AML.ckpt" in ckpts and "fine-tune+AML_transcriptor.ckpt" in ckpts and len(ckpts) == 13
    assert not (out / "checkpoints" / ".resume").exists() or not any((out / "checkpoints" / ".resume").iterdir())
    capsys.readouterr()
    again = se.experiment("tiny", out, progress=True, skip_bach10=True)
    log = capsys.readouterr().out
    assert log.count(": loaded ") == 10 and "steps in" not in log
    for t in ("table1", "table2"):  # (compared as JSON: NaN, an instrument absent from the test tracks, != NaN)
        assert json.dumps(again[t]) == json.dumps(r[t])


def test_workers_trained_every_stage_and_one_process_trains_the_same_stages(tiny_run, tmp_path, capsys):
    out, r = tiny_run
    assert r["workers"] == {"workers": 2, "failed": {}}
    tasks = se._tasks(bach10=True)
    assert list(tasks)[:2] == ["transcriptor step 1", "bach10"]  # the longest chains first
    assert all(list(tasks).index(n) < list(tasks).index(t) for t, needs in tasks.items() for n in needs)
    capsys.readouterr()
    alone = se.experiment("tiny", tmp_path / "alone", progress=True, skip_bach10=True, sets=["workers=1"])
    log = capsys.readouterr().out
    assert alone["workers"] is None and log.count(" steps in ") == 10 and ": loaded " not in log
    assert sorted(p.name for p in (tmp_path / "alone" / "checkpoints").glob("*.ckpt")) == sorted(
        p.name for p in (out / "checkpoints").glob("*.ckpt"))
    assert list(alone["table1"]) == ROWS  # the mixture row as JSON: NaN for an instrument absent from the test
    assert json.dumps(alone["table1"]["input mixture"]) == json.dumps(r["table1"]["input mixture"])
    # the number of processes is part of the recipe (and of every stage's key): one two-thread process and
    # two one-thread workers round differently, so a re-run repeats itself only with the same layout
    assert se.recipe("tiny", ["workers=1"])[1]["workers"] == 1


def test_two_fresh_runs_of_one_recipe_give_bit_identical_models_and_tables(tiny_run, tmp_path):
    """Same recipe and seed, same numbers: a second fresh run (its own corpus build, its own workers, which
    take the tasks in whatever order they come free) trains every stage to the same bits."""
    from weakmir.train import checkpoint

    out, r = tiny_run
    again = se.experiment("tiny", tmp_path / "again", progress=False, skip_bach10=True)
    names = sorted(p.name for p in (out / "checkpoints").glob("*.ckpt"))
    assert names == sorted(p.name for p in (tmp_path / "again" / "checkpoints").glob("*.ckpt"))
    for name in names:
        a = checkpoint.load(out / "checkpoints" / name)[0].state_dict()
        b = checkpoint.load(tmp_path / "again" / "checkpoints" / name)[0].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    for t in ("table1", "table2", "validation_sisdr_step2"):
        assert json.dumps(again[t]) == json.dumps(r[t]), t


def test_bach10_row_evaluates_the_real_recordings(tiny_run, shared_data_or_none):
    if shared_data_or_none is None:
        pytest.skip("../shared/data/bach10 is absent")
    b = tiny_run[1]["bach10"]
    assert b["tracks"] == 3  # ../shared/data holds chorales 01-03
    names = ["violin", "clarinet", "saxophone", "bassoon"]
    for k in names:
        assert b["gain"][k] == pytest.approx(b["separator"][k] - b["mixture"][k])
        assert -30 < b["mixture"][k] < 10
    assert tiny_run[1]["summary"]["bach10_sisdr_gain"] == pytest.approx(np.mean([b["gain"][k] for k in names]))


def test_unknown_preset_and_missing_bach10_fail_before_any_work(tmp_path):
    with pytest.raises(WeakmirError, match="unknown recipe 'huge'"):
        se.experiment("huge", tmp_path / "a")
    with pytest.raises(WeakmirError, match="unknown key 'train.stepz'"):
        se.experiment("tiny", tmp_path / "a", sets=["train.stepz=3"])
    with pytest.raises(WeakmirError, match="--no-bach10"):
        se.experiment("tiny", tmp_path / "b", bach10=tmp_path / "nowhere")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
