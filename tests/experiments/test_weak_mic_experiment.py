"""weak-mic end to end: train -> tag on a tiny openmic corpus, and the experiment's tiny preset."""

import json
import subprocess
import sys

import numpy as np
import pytest

from weakmir.cli import main
from weakmir.data.manifest import Manifest

pytestmark = pytest.mark.render


@pytest.fixture(scope="module")
def openmic_corpus(tmp_path_factory):
    from weakmir.data.synth.build import SynthConfig, build_corpus

    out = tmp_path_factory.mktemp("openmic") / "corpus"
    build_corpus(out, SynthConfig(preset="openmic", tracks=20, seconds=4.0, sample_rate=16000, jobs=1), progress=False)
    return Manifest.read(out)


def test_openmic_synth_corpus(openmic_corpus):
    m = openmic_corpus
    for t in m.tracks:
        assert 1 <= len(t.true_tags) <= 5 and t.tags is not None
        known = t.tags.present | t.tags.absent
        assert 1 <= len(known) <= 20
        assert t.tags.present <= set(t.true_tags) and not (t.tags.absent & set(t.true_tags))  # tags are true
        assert {s.provenance["openmic_class"] for s in t.stems} == set(t.true_tags)
    assert m.summary()["missing_tag_rate"] > 0.8  # ~10 % of the labels observed, as OpenMIC


def test_train_then_tag(openmic_corpus, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "weak-mic", str(openmic_corpus.path), "-o", str(run), "--recipe", "tiny", "--model", "att",
            "--set", "embedding.checkpoint=mel_embedding", "--set", "tag.epochs=40", "--quiet"]
    assert main(argv) == 0
    r = json.loads((run / "results.json").read_text())
    stage = r["summary"]["stages"]["att"]
    assert stage["loss_last"] < stage["loss_first"]  # the partial BCE went down
    assert r["recipe"]["model"] == "att" and r["recipe"]["tag"]["epochs"] == 40
    assert 0 <= r["summary"]["f1"] <= 100 and r["summary"]["scored_against"] == "true"
    for f in ("metrics.csv", "report.md", "report.html", "checkpoints/att.ckpt"):
        assert (run / f).is_file(), f
    clip = openmic_corpus.resolve(openmic_corpus.split("test")[0].mixture)
    long = tmp_path / "long.flac"
    from weakmir.audio.io import load, save

    x, sr = load(clip)
    save(long, np.concatenate([x, x, x, x], axis=1), sr)  # 16 s: two 9.6-s windows
    tags = tmp_path / "tags"
    assert main(["tag", str(run / "checkpoints" / "att.ckpt"), str(long), "-o", str(tags)]) == 0
    rec = json.loads((tags / "long" / "tags.json").read_text())
    assert len(rec["clip"]) == 20 and all(0 < p < 1 for p in rec["clip"].values())
    assert [w["start_s"] for w in rec["windows"]] == [0.0, pytest.approx(16 * 0.96 - 9.6, abs=1e-3)]
    assert max(w["probabilities"]["voice"] for w in rec["windows"]) == pytest.approx(rec["clip"]["voice"])
    rows = (tags / "tags.csv").read_text().splitlines()
    assert rows[0] == "file,class,probability,present" and len(rows) == 21
    assert (tags / "long" / "attention.png").read_bytes()[:4] == b"\x89PNG"
    # the same tagger re-run from its checkpoint gives the same numbers (a self-describing checkpoint)
    assert main(["tag", str(run / "checkpoints" / "att.ckpt"), str(long), "-o", str(tmp_path / "t2")]) == 0
    assert json.loads((tmp_path / "t2" / "long" / "tags.json").read_text())["clip"] == rec["clip"]


def test_tiny_experiment(tmp_path):
    out = tmp_path / "exp"
    code = ("from weakmir.cli import main\nimport sys\n"
            f"sys.exit(main(['experiment', 'weak-mic', '--preset', 'tiny', '-o', {str(out)!r}, '--quiet',"
            "'--set', 'tracks=20', '--set', 'embedding.tracks=6']))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads((out / "results.json").read_text())
    s = r["summary"]
    for k in ("f1_att", "f1_fc_t", "f1_fc", "f1_rnn", "f1_rf", "f1_mt", "f1_dgm", "f1_missing_as_negative"):
        assert set(s[k]) == {"mean", "std"} and 0 <= s[k]["mean"] <= 100, k
    assert {"auroc_att", "map_att", "mt_gain_at_4pct"} <= set(s)
    assert r["recipe"]["seeds"] == 2 and r["tables"]["rows"]["att"]["true"]["f1"]["n"] == 2
    emb = r["learning_curves"]["embedding"]
    assert np.mean(emb[-3:]) < np.mean(emb[:3])  # the embedding's pretraining loss went down
    for name in ("embedding", "att_seed0", "mt_seed1", "dgm_seed0", "rf_seed0", "bl_ft_final_seed0",
                 "ratio_mt_0.04_seed0"):
        assert (out / "checkpoints" / f"{name}.ckpt").is_file(), name
    html = (out / "report.html").read_text()
    assert "Table 3.1" in html and "Figure 5.3" in html and "Figure 3.5" in html
    # the embedding corpus is disjoint from the tagging corpus (its own seed)
    assert r["recipe"]["embedding"]["seed"] != r["recipe"]["corpus_seed"]
    # Figure 5.3 on its own corpus (ratio.tracks 10: 8 / 1 / 1 clips), scored on that corpus's test clip
    assert s["ratio_clips"] == {"train": 8, "valid": 1, "test": 1} and s["clips"]["train"] == 16
    assert len(Manifest.read(out / "corpus" / "ratio").tracks) == 10
    assert json.loads((out / "corpus" / "ratio" / "synth.json").read_text())["options"]["seed"] == 2000
    assert r["tables"]["ratio"]["0.04"]["mt"]["f1"]["n"] == 1


def test_ratio_corpus_must_be_disjoint(tmp_path):
    from weakmir.errors import WeakmirError
    from weakmir.experiments.weak_mic import ratio_corpus, recipe

    P, _ = recipe("tiny", ["ratio.corpus_seed=0"])
    with pytest.raises(WeakmirError, match="ratio.corpus_seed 0 equals corpus_seed"):
        ratio_corpus(P, tmp_path, print, False)
    P, _ = recipe("tiny", ["ratio.tracks=0"])
    assert ratio_corpus(P, tmp_path, print, False) is None and not (tmp_path / "corpus").exists()


def test_report_of_a_figure_5_3_only_recipe(tmp_path):
    """``--set tables=["5.3"]`` has no table rows: the page still draws Figure 5.3 (and no Figure 3.4)."""
    from weakmir.experiments.weak_mic import experiment_page

    ms = {"mean": 50.0, "std": 1.0, "n": 3}
    point = {k: {m: dict(ms) for m in ("f1", "auroc", "map")} for k in ("att", "mt")}
    r = {"summary": {"corpus": "synth", "clips": {"train": 8}, "known_fraction_train": 0.1, "features": "embedding",
                     "embedding_trained_on": "synth", "seconds": 60.0},
         "tables": {"rows": {}, "ratio": {"0.01": point, "0.04": point}}, "learning_curves": {}}
    experiment_page(r, None, {}, None).write(tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert "Figure 5.3" in html and "Figure 3.4" not in html and "4 %" in html
