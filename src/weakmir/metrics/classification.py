"""Multi-label classification metrics with a mask for missing labels.

Conventions
-----------
* ``y_true`` ``(n, K)`` in {0, 1}, ``y_score`` ``(n, K)`` scores (probabilities
  for the threshold), ``mask`` ``(n, K)`` with 1 where the label is known. A
  masked-out entry is left out of every count: missing is missing, never a
  negative. A class with no known entry gets NaN.
* Per class: accuracy; precision, recall and F1 of the positive class (what
  self-refine_koo2023 Table 1 reports); the same for the negative class; the
  macro average over the two classes (weak-mic_gururani_thesis §2.3.2: "the
  F1-scores for both positive and negative class are averaged"; likewise P and
  R); AUROC (scikit-learn ``roc_auc_score``; NaN when only one class is known); average precision
  (``average_precision_score``, the ``ap`` key; its mean over classes is the mAP that PaSST and
  EfficientAT report on OpenMIC; NaN without a known positive and negative).
* Overall: the mean over classes of the per-class values (Gururani's "overall
  precision, recall, and F1", which average the per-instrument macro values),
  plus micro accuracy over every known entry.
* scikit-learn computes every count (``precision_recall_fscore_support``).
  A value with a zero denominator (e.g. the positive-class precision and
  recall of a class with no positive and no predicted positive) is undefined:
  NaN, left out of the macro and overall means, not counted as 0.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, precision_recall_fscore_support, roc_auc_score


def validate(y_true, y_score, mask=None) -> None:
    """Raise ``ValueError`` on shape mismatch, non-binary truth, NaN scores."""
    t, s = np.asarray(y_true), np.asarray(y_score)
    if t.ndim != 2 or t.shape != s.shape:
        raise ValueError(f"y_true {t.shape} and y_score {s.shape} must both be (n, classes)")
    if mask is not None and np.asarray(mask).shape != t.shape:
        raise ValueError(f"mask {np.asarray(mask).shape} must match y_true {t.shape}")
    known = np.ones(t.shape, bool) if mask is None else np.asarray(mask) > 0
    if not np.isin(t[known], (0, 1)).all():
        raise ValueError("y_true must be 0/1 where known")
    if not np.isfinite(s[known]).all():
        raise ValueError("y_score has NaN or inf where labels are known")


def evaluate(y_true, y_score, mask=None, threshold: float = 0.5, classes=None) -> dict:
    """Per-class and overall metrics (see module docstring).

    Shape: ``(n, K)`` each. ``threshold`` may be a scalar or ``(K,)``.
    Returns ``{"overall": {...}, "per_class": {name: {...}}}``.
    """
    validate(y_true, y_score, mask)
    t = np.asarray(y_true).astype(int)
    s = np.asarray(y_score, dtype=float)
    K = t.shape[1]
    known = np.ones(t.shape, bool) if mask is None else np.asarray(mask) > 0
    thr = np.broadcast_to(np.asarray(threshold, dtype=float), (K,))
    pred = (s >= thr[None, :]).astype(int)
    names = list(classes) if classes is not None else [str(k) for k in range(K)]
    per = {}
    for k, name in enumerate(names):
        sel = known[:, k]
        yt, yp, ys = t[sel, k], pred[sel, k], s[sel, k]
        if sel.sum() == 0:
            per[name] = {m: float("nan") for m in _KEYS}
            per[name]["support"] = 0
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p, r, f, sup = precision_recall_fscore_support(yt, yp, labels=[1, 0], zero_division=np.nan)
        both = len(np.unique(yt)) == 2
        auc = float(roc_auc_score(yt, ys)) if both else float("nan")
        ap = float(average_precision_score(yt, ys)) if both else float("nan")
        per[name] = {
            "accuracy": float(accuracy_score(yt, yp)),
            "precision": float(p[0]), "recall": float(r[0]), "f1": float(f[0]),
            "precision_negative": float(p[1]), "recall_negative": float(r[1]), "f1_negative": float(f[1]),
            "precision_macro": _nanmean(p), "recall_macro": _nanmean(r), "f1_macro": _nanmean(f),
            "auroc": auc, "ap": ap, "support": int(sel.sum()), "positives": int(yt.sum()),
        }
    overall = {}
    for m in _KEYS:
        vals = np.array([per[n][m] for n in names], dtype=float)
        overall[m] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
    overall["micro_accuracy"] = float((pred[known] == t[known]).mean()) if known.any() else float("nan")
    overall["known_fraction"] = float(known.mean())
    return {"overall": overall, "per_class": per}


def precision_recall_at(y_true, y_score, thresholds, mask=None, classes=None) -> dict:
    """The positive-class precision and recall of each class at each threshold (a P/R curve on a fixed
    grid): the values :func:`evaluate` gives at each of ``thresholds``, counted once for all of them
    (NaN where a denominator is 0, as there).

    Shape: ``(n, K)`` each, ``thresholds (M,)`` -> ``{name: [{"threshold", "precision", "recall"}] * M}``.
    """
    validate(y_true, y_score, mask)
    t = np.asarray(y_true).astype(int)
    s = np.asarray(y_score, dtype=float)
    known = np.ones(t.shape, bool) if mask is None else np.asarray(mask) > 0
    thr = np.asarray(thresholds, dtype=float)
    pred = (s[None] >= thr[:, None, None]) & known[None]  # (M, n, K)
    pos = ((t == 1) & known)[None]
    tp, pp, ap = (pred & pos).sum(1), pred.sum(1), pos.sum(1)  # (M, K)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pp > 0, tp / np.maximum(pp, 1), np.nan)
        recall = np.where(ap > 0, tp / np.maximum(ap, 1), np.nan)
    names = list(classes) if classes is not None else [str(k) for k in range(t.shape[1])]
    return {name: [{"threshold": float(thr[i]), "precision": float(precision[i, k]), "recall": float(recall[i, k])}
                   for i in range(len(thr))] for k, name in enumerate(names)}


def _nanmean(v) -> float:
    v = np.asarray(v, dtype=float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


_KEYS = ("accuracy", "precision", "recall", "f1", "precision_negative", "recall_negative", "f1_negative",
         "precision_macro", "recall_macro", "f1_macro", "auroc", "ap")
