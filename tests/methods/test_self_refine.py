"""Self-refine: losses on hand-built examples, and a tiny refine run end to end."""

import json

import numpy as np
import pytest
import torch

from weakmir.data.manifest import Manifest
from weakmir.methods import self_refine as sr
from weakmir.train import checkpoint


def test_classifier_loss():
    p = torch.tensor([[0.9, 0.1], [0.5, 0.5]])
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert sr.classifier_loss(p, y).item() == pytest.approx((0.1 + 0.1 + 0.5 + 0.5) / 4)
    m = torch.tensor([[1.0, 1.0], [0.0, 0.0]])  # second clip's labels missing: not counted
    assert sr.classifier_loss(p, y, m).item() == pytest.approx(0.1)
    with pytest.raises(ValueError, match="one shape"):
        sr.classifier_loss(p, y[:, :1])


def test_separation_loss_sums_multilabel_estimates():
    # classes vocals, bass, drums, other; one source labelled {bass, drums}
    T = 6
    est = torch.zeros(1, 4, 1, T)
    est[0, 1] = 1.0  # bass estimate
    est[0, 2] = 2.0  # drums estimate
    targets = torch.zeros(1, 4, 1, T)
    targets[0, 1] = 3.0  # the {bass, drums} source
    assignment = torch.tensor([[[1.0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]])
    mask = torch.tensor([[1.0, 1, 1, 0]])
    assert sr.separation_loss(est, targets, assignment, mask).item() == 0.0  # 1 + 2 == 3: no loss
    est[0, 2] = 0.0
    assert sr.separation_loss(est, targets, assignment, mask).item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="disagree"):
        sr.separation_loss(est, targets[:, :3], assignment, mask)


def test_tiny_refine_end_to_end(pop_corpus, tmp_path):
    out, m, _, _ = pop_corpus
    cfg = sr.RefineConfig(steps=24, batch_size=4, iterations=2, examples_per_epoch=96, splits=("train", "valid", "test"),
                          sample_rate=22050, effects=False, preload=True)  # the cheap settings (rate, effects: tested elsewhere)
    from weakmir.experiments.self_refine import refine_and_report

    res = refine_and_report(out / "manifest.json", tmp_path / "refined", cfg, progress=False)
    for losses in res.histories:
        assert len(losses) == 24
        assert np.mean(losses[-6:]) < np.mean(losses[:6])  # the classifier learned something
    refined = Manifest.read(tmp_path / "refined")  # paths re-based, files found
    assert len(refined.tracks) == len(m.tracks)
    stems = [s for t in refined.tracks for s in t.observed_stems()]
    assert all("refine" in s.provenance and set(s.observed) == set(s.provenance["refine"]["labels"]) for s in stems)
    assert all(abs(sum(1 for _ in s.provenance["refine"]["probabilities"]) - 4) == 0 for s in stems)
    saved = json.loads((tmp_path / "refined" / "refine.json").read_text())
    assert saved["stats"]["stems"] == len(stems) and 0 <= saved["stats"]["tp"] <= len(stems)
    assert "# Self-refine: suspected mislabels" in (tmp_path / "refined" / "report.md").read_text()
    page = (tmp_path / "refined" / "report.html").read_text()
    assert page.startswith("<!doctype html>") and page.count("<tr>") == 1 + saved["stats"]["changed"]
    # a spectrogram (matplotlib, time / frequency axes, colour bar) of each of the 12 most confident suspects
    pngs = sorted((tmp_path / "refined" / "report_files").glob("*.png")) if saved["stats"]["changed"] else []
    assert len(pngs) == min(12, saved["stats"]["changed"])
    assert page.count('<img src="data:image/png;base64,') == len(pngs)
    # the second-round classifier reloads and gives identical output
    model, meta = checkpoint.load(tmp_path / "refined" / "psi_2.ckpt")
    model2, _ = checkpoint.load(tmp_path / "refined" / "psi_2.ckpt")
    x = torch.randn(1, 2, model.segment)
    with torch.no_grad():
        assert torch.equal(model(x), model2(x))


def test_tiny_separator_training_on_refined_style_labels(pop_corpus, tmp_path):
    """§3.2 training with a multi-labelled source: loss goes down, checkpoint reloads identically.

    Uses the fast mask separator (Hybrid Demucs costs ~3 s per CPU step; it is checked below)."""
    out, m, _, _ = pop_corpus
    t = m.tracks[0]
    override = {(t.id, s.id): ["bass", "drums"] if s.id == "bass" else s.observed for s in t.observed_stems()}
    cfg = sr.SeparatorConfig(model="mask", model_kwargs={"n_fft": 512, "hop_length": 128, "hidden": 8, "layers": 2},
                             steps=30, batch_size=2, seconds=1.0, p_multi=0.5, examples_per_epoch=60,
                             splits=("train", "valid", "test"), lr=3e-3, effects=False)
    model, kwargs, hist = sr.train_separator(m, cfg, labels_override=override)
    assert len(hist.losses) == 30 and np.mean(hist.losses[-8:]) < np.mean(hist.losses[:8])
    p = checkpoint.save(tmp_path / "sep.ckpt", model, kwargs)
    again, _ = checkpoint.load(p)
    x = torch.randn(1, 2, 44100)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


def test_hdemucs_wrapper_contract(tmp_path):
    pytest.importorskip("demucs")
    from weakmir.models import build

    torch.manual_seed(0)
    model = build("hdemucs", channels=4).eval()
    x = torch.randn(1, 2, 22050)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 4, 2, 22050) and model.sources == ["vocals", "bass", "drums", "other"]
    p = checkpoint.save(tmp_path / "hd.ckpt", model, {"channels": 4})
    again, meta = checkpoint.load(p)
    with torch.no_grad():
        assert torch.equal(again(x), y)
    with pytest.raises(ValueError, match="expected"):
        model(torch.randn(1, 1, 100))


def test_classifier_bce_matches_torch_and_masks_unknown_labels():
    z = torch.tensor([[2.0, -1.0], [0.5, 0.0]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    full = torch.nn.functional.binary_cross_entropy(torch.sigmoid(z), y)
    assert sr.classifier_bce(z, y).item() == pytest.approx(full.item(), rel=1e-5)
    m = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # only the first entry is known
    assert sr.classifier_bce(z, y, m).item() == pytest.approx(float(torch.log1p(torch.exp(torch.tensor(-2.0)))), rel=1e-5)
    with pytest.raises(ValueError, match="one shape"):
        sr.classifier_bce(z, y[:, :1])


def test_mislabel_scores_against_oracle_and_do_nothing_relabellings(pop_corpus):
    """Relabelling every stem to its true labels finds every corrupted stem and nothing else;
    keeping the observed labels finds none."""
    _, m, _, _ = pop_corpus
    stems = [(t, s) for t in m.tracks for s in t.observed_stems() if s.true_labels is not None]
    wrong = sum(set(s.true_labels) != set(s.observed) for _, s in stems)
    assert wrong > 0  # the fixture corpus has label noise
    oracle = {(t.id, s.id): {"labels": list(s.true_labels)} for t, s in stems}
    r = sr.mislabel_scores(m, oracle)
    assert (r["tp"], r["fp"], r["fn"]) == (wrong, 0, 0) and r["labels_exact_refined"] == 1.0
    assert r["labels_exact_observed"] == pytest.approx(1 - wrong / len(stems))
    assert r["multi_labelled"] == sum(len(s.true_labels) > 1 for _, s in stems)
    same = sr.mislabel_scores(m, {(t.id, s.id): {"labels": list(s.observed)} for t, s in stems})
    assert (same["tp"], same["fn"], same["mislabel_recall"]) == (0, wrong, 0.0) and np.isnan(same["mislabel_precision"])
