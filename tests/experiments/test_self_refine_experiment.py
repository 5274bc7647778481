"""weakmir experiment self-refine at the tiny preset: every stage once, the contract keys, every model kept,
a re-run that loads them; the separator switch."""

import json

import numpy as np
import pytest

from weakmir.data.labels import STEMS4
from weakmir.errors import WeakmirError
from weakmir.experiments import self_refine as ex
from weakmir.train import checkpoint


def test_experiment_tiny_preset_end_to_end(tmp_path, monkeypatch):
    """Every stage of the self-refine experiment once, on a seconds-long corpus: the results
    contract holds, every table is filled, the learning curves went down; a re-run trains nothing."""
    res = ex.experiment("tiny", tmp_path / "exp", progress=False)
    s = res["summary"]
    for key in ("sdr_clean", "sdr_noisy", "sdr_refined", "gap_closed", "acc_multi_clean", "acc_multi_refined",
                "mislabel_precision", "mislabel_recall"):
        assert key in s
    assert set(res["table2"]) == {"clean", "noisy", "psi_clean", "psi_noisy", "psi_refined"}
    assert {"threshold_0.5", "adaptive_thresholds", "single_labelled_only", "finetune_multi_labelled",
            "self_refining_x3"} <= set(res["table3"])
    assert all(np.isfinite(t["avg"]) for t in res["table2"].values())
    saved = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert saved["summary"]["preset"] == "tiny"
    assert "## Table 2" in (tmp_path / "exp" / "report.md").read_text()
    page = (tmp_path / "exp" / "report.html").read_text()
    # Figure 4 (one P/R figure per classifier, a panel per class) and two learning-curve figures, PNGs beside
    # the page and embedded in it
    pngs = sorted(p.name for p in (tmp_path / "exp" / "report_files").glob("*.png"))
    assert pngs == ["curves-classifier.png", "curves-separator.png", "pr-clean.png", "pr-noisy.png", "pr-refined.png"]
    assert page.count('<img src="data:image/png;base64,') == 5
    assert "<h2>Table 2: separation SDR" in page
    # every classifier and separator it trained is kept and loads; the separators run in weakmir separate
    ckpts = {p.stem for p in (tmp_path / "exp" / "checkpoints").glob("*.ckpt")}
    assert {"psi_clean", "psi_noisy", "psi_refined", "psi_refined_x3"} <= ckpts
    assert {f"separator_{k}" for k in res["table2"]} <= ckpts and "ablation_threshold_0.5" in ckpts
    model, meta = checkpoint.load(tmp_path / "exp" / "checkpoints" / "separator_psi_refined.ckpt")
    assert model.sources == list(STEMS4) and meta["config"]["recipe"]["separator"] == saved["recipe"]["separator"]
    # a re-run loads every stage (it may not train one) and gives the same tables
    from weakmir.experiments import stages

    monkeypatch.setattr(stages, "fit", lambda *a, **k: pytest.fail("the re-run trained a stage again"))
    again = ex.experiment("tiny", tmp_path / "exp", progress=False)
    assert json.dumps(again["table2"]) == json.dumps(res["table2"])
    # classifier learning is checked over more steps in test_tiny_refine_end_to_end; six BCE steps at
    # batch 2 are too few to go down reliably, six separator steps from a random init do
    assert all(len(c) == 6 and np.isfinite(c).all() for c in res["learning_curves"]["classifier"].values())
    for name, c in res["learning_curves"]["separator"].items():
        assert np.mean(c[-2:]) < np.mean(c[:2]), name


def test_experiment_separator_switch_builds_both_paper_models():
    """``--separator``: X-UMX (tf-domain loss) or Hybrid Demucs (time-domain L1), at the preset's rate."""
    from weakmir.models import build

    quick = ex.recipe("quick")[0]
    x, h = ex.separator_config(quick, "xumx"), ex.separator_config(quick, "hdemucs")
    assert (x.model, h.model) == ("xumx", "hdemucs") and x.sample_rate == h.sample_rate == quick.sample_rate
    assert h.steps == x.steps and h.batch_size == x.batch_size and h.lr == 3e-4
    model = build(h.model, sources=list(STEMS4), sample_rate=h.sample_rate, **h.model_kwargs)
    assert model.sample_rate == 22050 and 2e6 < sum(p.numel() for p in model.parameters()) < 3e6
    with pytest.raises(WeakmirError, match="unknown separator"):
        ex.separator_config(quick, "spleeter")


