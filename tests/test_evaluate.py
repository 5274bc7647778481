"""weakmir evaluate end to end: synth corpus (oracle bound, mixture input) and Bach10."""

import json

import numpy as np
import pytest

from weakmir.audio.io import load, save
from weakmir.cli import main
from weakmir.errors import WeakmirError
from weakmir.evaluate import evaluate


def test_separation_oracle_and_mixture_on_synth(pop_corpus, tmp_path):
    out, m, _, _ = pop_corpus
    oracle = evaluate("separation", out, "oracle", tmp_path / "o", progress=False)
    mix = evaluate("separation", out, "mixture", tmp_path / "m", progress=False)
    assert oracle["aggregate"]["avg"]["SDR"] == np.inf  # the bound
    for lab, v in mix["aggregate"].items():
        if lab != "avg":
            assert v["SDR"] < 5 and v["SI-SDR"] == pytest.approx(v["SI-SDR_mixture"])
    saved = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert saved["aggregate"]["avg"]["SDR"] == "inf" and "## Aggregate" in (tmp_path / "o" / "metrics.md").read_text()


def test_separation_from_estimate_files(pop_corpus, tmp_path):
    out, m, _, _ = pop_corpus
    t = m.tracks[0]
    ests = tmp_path / "ests"
    from weakmir.evaluate import references

    refs = references(m, t, "label")
    mixture, _ = load(m.resolve(t.mixture))
    for lab, x in refs.items():  # a half-way estimate: average of reference and mixture
        save(ests / t.id / f"{lab}.wav", 0.5 * (x + mixture[:, :x.shape[1]]), t.sample_rate, subtype="FLOAT")
    one = m.tracks[:1]
    from weakmir.data.manifest import Manifest

    one_path = out / "one-track.json"  # beside the corpus: its paths are relative to it
    Manifest(tracks=one, root=m.root, name="one").write(one_path)
    res = evaluate("separation", one_path, ests, tmp_path / "r", progress=False)
    mixres = evaluate("separation", one_path, "mixture", tmp_path / "rm", progress=False)
    for lab in refs:
        assert res["tracks"][t.id][lab]["SDR"] > mixres["tracks"][t.id][lab]["SDR"] + 3
    # a missing estimate and a length mismatch are one-line errors naming the file
    lab = next(iter(refs))
    (ests / t.id / f"{lab}.wav").unlink()
    with pytest.raises(WeakmirError, match=f"{lab}.wav: estimate missing"):
        evaluate("separation", one_path, ests, tmp_path / "r2", progress=False)
    save(ests / t.id / f"{lab}.wav", np.zeros((2, 100), np.float32), t.sample_rate)
    with pytest.raises(WeakmirError, match="100 samples but the reference has"):
        evaluate("separation", one_path, ests, tmp_path / "r3", progress=False)
    assert not (tmp_path / "r3").exists()  # nothing half-written
    assert evaluate("separation", one_path, ests, tmp_path / "r4", pad=True, progress=False)


def test_pitch_transcription_tagging_oracle(chorale_corpus, tmp_path):
    out, m, _, _ = chorale_corpus
    p = evaluate("pitch", out, "oracle", tmp_path / "p", progress=False)
    assert p["aggregate"]["mean"]["raw_pitch_accuracy"] == 1.0 and p["aggregate"]["stems"] >= 8
    tr = evaluate("transcription", out, "oracle", tmp_path / "t", progress=False)
    assert tr["aggregate"]["mean"]["note_accuracy"] == 1.0
    tg = evaluate("tagging", out, "oracle", tmp_path / "g", progress=False)
    assert tg["aggregate"]["overall"]["f1_macro"] == 1.0
    # tag scores from a file; an unknown class is a clear error
    scores = {t.id: {c: 0.0 for c in ("violin", "piano")} for t in m.tracks}
    (tmp_path / "s.json").write_text(json.dumps(scores))
    res = evaluate("tagging", out, tmp_path / "s.json", tmp_path / "g2", progress=False)
    assert res["aggregate"]["per_class"]["violin"]["recall"] == 0.0
    scores[m.tracks[0].id]["kazoo"] = 1.0
    (tmp_path / "s.json").write_text(json.dumps(scores))
    with pytest.raises(WeakmirError, match="unknown classes"):
        evaluate("tagging", out, tmp_path / "s.json", tmp_path / "g3", progress=False)


def test_bach10_dataset_and_evaluate(shared_data, tmp_path, capsys):
    root = shared_data / "bach10"
    assert main(["dataset", "bach10", str(root), "-o", str(tmp_path / "b10")]) == 0
    from weakmir.data.manifest import Manifest

    m = Manifest.read(tmp_path / "b10")
    assert len(m.tracks) == 3 and [s.id for s in m.tracks[0].stems] == ["violin", "clarinet", "saxophone", "bassoon"]
    # the mixture is the sum of the four recordings
    t = m.tracks[0]
    mix, _ = load(m.resolve(t.mixture))
    total = sum(load(m.resolve(s.path))[0] for s in t.stems)
    assert np.corrcoef(mix.ravel(), total.ravel())[0, 1] > 0.99
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "b10"), "mixture", "--task", "separation", "--by", "stem",
                 "-o", str(tmp_path / "ev"), "--quiet"]) == 0
    res = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    for inst in ("violin", "clarinet", "saxophone", "bassoon"):
        assert -8 < res["aggregate"][inst]["SDR"] < -2  # four instruments of similar level: input SDR ~ -5 dB
    assert main(["evaluate", str(tmp_path / "b10"), "oracle", "--task", "pitch", "-o", str(tmp_path / "p"), "--quiet"]) == 0
    assert "raw_pitch_accuracy 1.000" in capsys.readouterr().out
    # notes from GTNotes lie on the f0 annotation
    from weakmir.data.notes import read_f0, read_notes

    notes = read_notes(m.resolve(t.stems[0].notes))
    times, hz, voiced = read_f0(m.resolve(t.stems[0].f0))
    mid = (notes[:, 0] + notes[:, 1]) / 2
    k = np.clip(np.rint((mid - 0.023) / 0.01).astype(int), 0, len(hz) - 1)
    assert np.mean(np.abs(69 + 12 * np.log2(hz[k] / 440) - notes[:, 2]) < 0.5) > 0.9


def test_bad_inputs(tmp_path):
    with pytest.raises(WeakmirError, match="unknown task"):
        evaluate("beats", tmp_path, "oracle", tmp_path / "o")
    with pytest.raises(WeakmirError, match="no such manifest"):
        evaluate("pitch", tmp_path / "none.json", "oracle", tmp_path / "o")
    assert main(["dataset", "bach10", str(tmp_path / "nothing"), "-o", str(tmp_path / "x")]) == 2
