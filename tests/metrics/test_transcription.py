import json

import numpy as np
import pytest

from weakmir.metrics import transcription as tr


def test_toys():
    ref = np.array([[0.0, 0.5, 60], [0.5, 1.0, 64], [1.0, 1.5, 67]])
    perfect = tr.evaluate(ref, ref)
    assert perfect["f_measure"] == 1 and perfect["note_accuracy"] == 1 and perfect["false_positive_rate"] == 0
    est = np.array([[0.02, 0.4, 60], [0.5, 1.0, 65], [1.0, 1.1, 67], [2.0, 2.5, 70]])
    r = tr.evaluate(ref, est)
    # onsets: 60 and 67 match (64 vs 65 is a semitone off); TP 2, FP 2, FN 1
    assert r["precision_no_offset"] == pytest.approx(2 / 4) and r["recall_no_offset"] == pytest.approx(2 / 3)
    assert r["note_accuracy"] == pytest.approx(2 / 5) and r["false_positive_rate"] == pytest.approx(2 / 4)
    # with offsets: 67's offset 1.1 vs 1.5 is outside max(50 ms, 20 % of 0.5 s = 0.1 s); 60's 0.4 vs 0.5 inside
    assert r["precision"] == pytest.approx(1 / 4)
    empty = tr.evaluate(ref, np.zeros((0, 3)))
    assert empty["recall"] == 0 and empty["note_accuracy"] == 0


def test_rolls():
    roll = np.zeros((88, 100))
    roll[60 - 21, 10:30] = 1
    roll[64 - 21, 30:31] = 0.9
    notes = tr.roll_to_notes(roll, frame_rate=100)
    assert notes.tolist() == [[0.1, 0.3, 60, 127], [0.3, 0.31, 64, 114]]
    assert tr.evaluate_rolls(roll, roll, 100)["f_measure"] == 1
    with pytest.raises(ValueError, match="88"):
        tr.roll_to_notes(np.zeros((87, 4)), 100)


def test_validate():
    with pytest.raises(ValueError, match="onset < offset"):
        tr.evaluate(np.array([[1.0, 0.5, 60]]), np.array([[0.0, 0.5, 60]]))
    with pytest.raises(ValueError, match=r"\(n, 3\+\)"):
        tr.evaluate(np.array([[1.0, 1.5]]), np.array([[0.0, 0.5, 60]]))


def test_mir_eval_stored_outputs(shared_data):
    base = shared_data / "mir_eval_testdata" / "tests" / "data" / "transcription"
    n = 0
    for out in sorted(base.glob("output*.json")):
        k = out.stem[len("output"):]
        ref = np.loadtxt(base / f"ref{k}.txt", ndmin=2)
        est = np.loadtxt(base / f"est{k}.txt", ndmin=2)
        to_midi = lambda a: np.c_[a[:, :2], 69 + 12 * np.log2(a[:, 2] / 440.0)]  # noqa: E731
        got = tr.evaluate(to_midi(ref), to_midi(est))
        exp = json.loads(out.read_text())
        for key, v in exp.items():
            assert got[key.lower().replace("-", "_")] == pytest.approx(v, abs=1e-10), (out.name, key)
        n += 1
    assert n >= 5
