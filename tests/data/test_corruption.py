import numpy as np
import pytest

from weakmir.data.corruption import NoiseRates, apply_plan, drop_tags, plan_corruption
from weakmir.data.labels import OPENMIC, STEMS4


def test_rates_within_tolerance_and_true_labels_untouched():
    rng = np.random.default_rng(0)
    rates = NoiseRates(bleed=0.10, wrong_label=0.15, merge=0.05)
    counts, n = {"bleed": 0, "wrong_label": 0, "merge": 0}, 0
    for _ in range(1500):
        labels = list(STEMS4)
        before = list(labels)
        plan = plan_corruption(labels, rates, rng)
        assert labels == before
        n += len(labels)
        for i, p in enumerate(plan):
            if p is None or p["kind"] == "absorbed":
                continue
            counts[p["kind"]] += 1
            if p["kind"] == "wrong_label":
                assert p["label"] != labels[i] and p["label"] in STEMS4
            if p["kind"] == "merge":
                j = p["source"]
                assert plan[j] == {"kind": "absorbed", "into": i} and labels[j] != labels[i]
            if p["kind"] == "bleed":
                assert -20 <= p["gain_db"] <= -6 and p["source"] != i
    for k, asked in (("bleed", 0.10), ("wrong_label", 0.15), ("merge", 0.05)):
        assert counts[k] / n == pytest.approx(asked, abs=0.015), k


def test_zero_rates_and_validation():
    rng = np.random.default_rng(1)
    assert plan_corruption(list(STEMS4), NoiseRates(), rng) == [None] * 4
    with pytest.raises(ValueError, match="sum to"):
        NoiseRates(0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="outside"):
        NoiseRates(bleed=-0.1)


def test_apply_plan_audio():
    a = [np.full((2, 10), 1.0, np.float32), np.full((2, 10), 2.0, np.float32), np.full((2, 10), 3.0, np.float32)]
    plan = [{"kind": "bleed", "source": 1, "gain_db": -20.0}, {"kind": "absorbed", "into": 2}, {"kind": "merge", "source": 1}]
    out = apply_plan(a, plan)
    # bleed at -20 dB relative RMS: 1 + 0.1 * 1 (rms 1) -> 1.1
    assert np.allclose(out[0], 1.1) and out[1] is None and np.allclose(out[2], 5.0)


def test_missing_tags_rate_and_no_false_states():
    rng = np.random.default_rng(2)
    unknown, total = 0, 0
    for _ in range(300):
        true = set(rng.choice(OPENMIC, 3, replace=False))
        obs = drop_tags(true, OPENMIC, 0.6, rng)
        assert obs.present <= true and not (obs.absent & true)  # never a wrong state
        unknown += len(obs.unknown(OPENMIC))
        total += len(OPENMIC)
    assert unknown / total == pytest.approx(0.6, abs=0.02)
    full = drop_tags({"piano"}, OPENMIC, 0.0, rng)
    assert full.present == {"piano"} and len(full.absent) == 19
