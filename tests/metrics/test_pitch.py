import json

import numpy as np
import pytest

from weakmir.metrics import pitch


def test_toys():
    t = np.arange(100) * 0.01
    f = np.where(np.arange(100) < 50, 440.0, 0.0)
    perfect = pitch.evaluate(t, f, t, f)
    assert perfect == pytest.approx({"voicing_recall": 1, "voicing_false_alarm": 0, "raw_pitch_accuracy": 1,
                                     "raw_chroma_accuracy": 1, "overall_accuracy": 1})
    octave = pitch.evaluate(t, f, t, np.where(f > 0, 880.0, 0.0))
    assert octave["raw_pitch_accuracy"] == 0 and octave["raw_chroma_accuracy"] == 1
    off40 = pitch.evaluate(t, f, t, f * 2 ** (40 / 1200))  # inside the 50-cent tolerance
    off60 = pitch.evaluate(t, f, t, f * 2 ** (60 / 1200))
    assert off40["raw_pitch_accuracy"] == 1 and off60["raw_pitch_accuracy"] == 0
    silent = pitch.evaluate(t, f, t, np.zeros(100))
    assert silent["voicing_recall"] == 0 and silent["overall_accuracy"] == pytest.approx(0.5)
    # explicit voicing: a correct pitch guess on a frame called unvoiced counts for RPA, not for OA
    guess = pitch.evaluate(t, f, t, np.full(100, 440.0), est_voicing=np.zeros(100))
    assert guess["raw_pitch_accuracy"] == 1 and guess["voicing_recall"] == 0


def test_octave_errors_split_rca_minus_rpa_by_direction():
    t = np.arange(100) * 0.01
    f = np.where(np.arange(100) < 80, 200.0, 0.0)  # 80 voiced frames at 200 Hz, then 20 unvoiced
    est = np.full(100, 200.0)
    est[:20] = 400.0 * 2 ** (30 / 1200)  # 20 an octave up, inside the tolerance
    est[20:30] = 100.0  # 10 an octave down
    est[30:35] = 400.0 * 2 ** (70 / 1200)  # 5 near an octave up, outside it
    est[35:40] = 800.0  # 5 two octaves up: chroma right, neither
    est[40:45] = 0.0  # 5 without a guess
    est[80:] = 400.0  # unvoiced reference frames do not count
    r = pitch.octave_errors(t, f, t, est)
    assert r == pytest.approx({"octave_up": 20 / 80, "octave_down": 10 / 80})
    m = pitch.evaluate(t, f, t, est)
    assert m["raw_pitch_accuracy"] == pytest.approx(35 / 80)
    assert m["raw_chroma_accuracy"] - m["raw_pitch_accuracy"] == pytest.approx(35 / 80)  # the 20 + 10 and the 5 at x4
    assert pitch.octave_errors(t, f, t, -est) == r  # the sign (voicing) is ignored, as for RPA
    with pytest.raises(ValueError, match="one length"):
        pitch.octave_errors(t, f, t[:50], est)


def test_any_hop():
    t_ref = np.arange(200) * 0.01
    f_ref = np.full(200, 220.0)
    t_est = np.arange(0, 2.0, 0.0058)  # another hop
    res = pitch.evaluate(t_ref, f_ref, t_est, np.full(len(t_est), 220.0))
    assert res["raw_pitch_accuracy"] == pytest.approx(1.0)


def test_validate():
    with pytest.raises(ValueError, match="increase"):
        pitch.evaluate([0, 0.01, 0.01], [1, 1, 1], [0, 1], [1, 1])
    with pytest.raises(ValueError, match="one length"):
        pitch.evaluate([0, 0.01], [1], [0, 1], [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        pitch.evaluate([0, 0.01], [1, np.nan], [0, 1], [1, 1])


def test_mir_eval_stored_outputs(shared_data):
    base = shared_data / "mir_eval_testdata" / "tests" / "data" / "melody"
    n = 0
    for out in sorted(base.glob("output*.json")):
        k = out.stem[len("output"):]
        ref = np.loadtxt(base / f"ref{k}.txt")
        est = np.loadtxt(base / f"est{k}.txt")
        exp = json.loads(out.read_text())
        got = pitch.evaluate(ref[:, 0], ref[:, 1], est[:, 0], est[:, 1])
        for key, name in pitch.NAMES.items():
            assert got[name] == pytest.approx(exp[key], abs=1e-12), (out.name, key)
        n += 1
    assert n >= 5
