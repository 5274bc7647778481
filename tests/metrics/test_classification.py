import numpy as np
import pytest

from weakmir.metrics import classification as cl


def test_hand_computed():
    y = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
    s = np.array([[0.9, 0.2], [0.4, 0.8], [0.1, 0.6], [0.7, 0.7]])
    r = cl.evaluate(y, s, classes=["drums", "bass"])
    d = r["per_class"]["drums"]
    # drums: pred 1,0,0,1 vs 1,1,0,0 -> TP 1, FP 1, FN 1, TN 1
    assert d["accuracy"] == 0.5 and d["precision"] == 0.5 and d["recall"] == 0.5 and d["f1"] == 0.5
    assert d["f1_negative"] == 0.5 and d["f1_macro"] == 0.5
    assert d["auroc"] == pytest.approx(0.75)
    b = r["per_class"]["bass"]
    # bass: pred 0,1,1,1 vs 0,1,0,1 -> TP 2, FP 1, FN 0, TN 1
    assert b["precision"] == pytest.approx(2 / 3) and b["recall"] == 1 and b["f1"] == pytest.approx(0.8)
    assert b["precision_negative"] == 1 and b["recall_negative"] == 0.5 and b["f1_negative"] == pytest.approx(2 / 3)
    assert b["f1_macro"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert r["overall"]["f1_macro"] == pytest.approx((0.5 + (0.8 + 2 / 3) / 2) / 2)
    assert r["overall"]["micro_accuracy"] == pytest.approx(5 / 8)


def test_mask_is_missing_not_negative():
    y = np.array([[1, 0], [0, 0], [1, 1]])
    s = np.array([[0.9, 0.9], [0.1, 0.9], [0.8, 0.8]])
    mask = np.array([[1, 0], [1, 0], [1, 1]])  # class 1 only known for the last clip
    r = cl.evaluate(y, s, mask=mask)
    assert r["per_class"]["1"]["support"] == 1 and r["per_class"]["1"]["accuracy"] == 1.0
    assert np.isnan(r["per_class"]["1"]["auroc"])  # one known class only
    none = cl.evaluate(y, s, mask=np.zeros_like(y))
    assert np.isnan(none["overall"]["f1"]) and none["per_class"]["0"]["support"] == 0


def test_thresholds_and_validate():
    y = np.array([[1], [0]])
    s = np.array([[0.6], [0.4]])
    assert cl.evaluate(y, s, threshold=0.5)["per_class"]["0"]["accuracy"] == 1
    assert cl.evaluate(y, s, threshold=0.9)["per_class"]["0"]["recall"] == 0
    with pytest.raises(ValueError, match="must both be"):
        cl.evaluate(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="0/1"):
        cl.evaluate(np.full((1, 1), 2), np.zeros((1, 1)))


def test_precision_recall_at_equals_evaluate_at_each_threshold():
    """The P/R grid counted once equals scikit-learn's counts through evaluate, NaN where undefined (a
    threshold above every score: no predicted positive; a class with no known positive)."""
    rng = np.random.default_rng(0)
    y = (rng.random((40, 4)) < 0.3).astype(int)
    y[:, 3] = 0  # no positive at all
    s = np.clip(0.6 * y + 0.5 * rng.random((40, 4)), 0, 0.99)
    mask = (rng.random((40, 4)) < 0.7).astype(int)
    thresholds = [0.05, 0.3, 0.5, 0.95, 1.0]
    got = cl.precision_recall_at(y, s, thresholds, mask=mask, classes="abcd")
    for i, thr in enumerate(thresholds):
        want = cl.evaluate(y, s, mask=mask, threshold=thr, classes="abcd")["per_class"]
        for c in "abcd":
            assert got[c][i]["threshold"] == thr
            for m in ("precision", "recall"):
                np.testing.assert_equal(got[c][i][m], want[c][m])
    assert np.isnan(got["a"][-1]["precision"]) and np.isnan(got["d"][0]["recall"])
