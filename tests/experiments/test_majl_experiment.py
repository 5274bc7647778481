"""MAJL end to end: train on user manifests (several labellings) -> weakmir pitch; the tiny experiment."""

import csv
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from weakmir.cli import main
from weakmir.data import voice
from weakmir.data.manifest import Manifest


def _views(corpus: Path) -> tuple[Path, Path]:
    """A fully labelled manifest (2 training songs + valid/test) and a single-labelled one (stems / pitch)."""
    m = Manifest.read(corpus)
    sung = [t for t in m.tracks if voice.voice_stem(t) is not None]
    train = [t for t in sung if t.split == "train"]
    held = [t for t in sung if t.split != "train"]
    if not held:
        held, train = [dataclasses.replace(train[-1], split="test")], train[:-1]
    full = dataclasses.replace(m, tracks=train[:2] + held)
    rest = train[2:]
    assert rest, "the voice corpus needs more sung training songs"
    single = dataclasses.replace(m, tracks=[dataclasses.replace(t, labelling="stems" if i % 2 else "pitch")
                                            for i, t in enumerate(rest)])
    full.write(corpus / "majl_full.json")
    single.write(corpus / "majl_single.json")
    return corpus / "majl_full.json", corpus / "majl_single.json"


def test_train_majl_then_pitch(voice_corpus, tmp_path, capsys):
    corpus = voice_corpus[0]
    full, single = _views(corpus)
    run = tmp_path / "run"
    assert main(["train", "majl", str(full), str(single), "-o", str(run), "--recipe", "tiny", "--set", "train.crops=8",
                 "--set", "seed=2", "--quiet"]) == 0
    r = json.loads((run / "results.json").read_text())
    s = r["summary"]
    assert s["tracks"]["full"] == 2 and s["tracks"]["stems"] + s["tracks"]["pitch"] >= 1
    assert s["rows"] == ["pipeline", "naive", "stage1", "majl"]
    assert set(s["scores"]) == {"pipeline", "naive", "stage1", "majl"}
    assert all(np.isfinite(v["sdr"]) and 0 <= v["rpa"] <= 100 for v in s["scores"].values())
    assert r["recipe"]["seed"] == 2  # the resolved recipe, --set included, goes with the results
    assert r["recipe"]["th"] == 0.7 and (run / "metrics.csv").exists()
    assert "one run from seed 2" in (run / "report.html").read_text()  # the page says which seed drew its rows
    for name in ("pipeline_mss", "pipeline_pe", "pipeline", "naive", "stage1", "majl"):
        assert (run / "checkpoints" / f"{name}.ckpt").exists()
    curves = r["learning_curves"]
    assert len(curves["pipeline_mss"]) == 8 and len(curves["stage1"]) == 8
    assert np.mean(curves["pipeline_mss"][-3:]) < np.mean(curves["pipeline_mss"][:3])  # the separator learned
    # the same command again loads every row and scores them again, with a bar in seconds of audio unless --quiet
    capsys.readouterr()
    assert main(["train", "majl", str(full), str(single), "-o", str(run), "--recipe", "tiny", "--set", "train.crops=8",
                 "--set", "seed=2"]) == 0
    out, err = capsys.readouterr()
    assert "loaded stage1.ckpt" in out and "scoring: 100%" in err and "s of audio" in err, err
    assert json.loads((run / "results.json").read_text())["summary"]["scores"] == s["scores"]

    song = corpus / Manifest.read(full).split("test")[0].mixture
    out = tmp_path / "pitch"
    assert main(["pitch", str(run / "checkpoints" / "majl.ckpt"), str(song), "-o", str(out)]) == 0
    rows = list(csv.reader(open(out / "mixture" / "f0.csv")))
    n = sf.info(str(song)).frames
    assert rows[0] == ["time_s", "f0_hz", "confidence"] and len(rows) - 1 == n // 320 + 1
    assert float(rows[2][0]) == pytest.approx(0.02)
    v, sr = sf.read(str(out / "mixture" / "vocals.wav"))
    assert sr == 16000 and len(v) == n and (out / "mixture" / "f0.png").stat().st_size > 0
    # the pipeline's PE alone tracks a file as a clean voice (the separated one here): no vocals.wav
    assert main(["pitch", str(run / "checkpoints" / "pipeline_pe.ckpt"), str(out / "mixture" / "vocals.wav"), "-o",
                 str(tmp_path / "pe")]) == 0
    assert sorted(p.name for p in (tmp_path / "pe" / "vocals").iterdir()) == ["f0.csv", "f0.png"]
    assert len(list(csv.reader(open(tmp_path / "pe" / "vocals" / "f0.csv")))) - 1 == n // 320 + 1
    # the pipeline's separator alone is read by weakmir separate, and refused by pitch naming that verb
    assert main(["separate", str(run / "checkpoints" / "pipeline_mss.ckpt"), str(song), "-o", str(tmp_path / "s")]) == 0
    assert sf.info(str(tmp_path / "s" / "mixture" / "accompaniment.wav")).frames == n
    capsys.readouterr()
    assert main(["pitch", str(run / "checkpoints" / "pipeline_mss.ckpt"), str(song), "-o", str(tmp_path / "x")]) != 0
    err = capsys.readouterr().err
    assert "weakmir pitch needs a voice_pitch / pitch_estimator checkpoint" in err
    assert "voice_separator checkpoints are for weakmir separate" in err and not (tmp_path / "x").exists()


def test_train_majl_with_the_mir1k_settings_trains_that_sections_modules_on_the_shifted_copies(voice_corpus, tmp_path,
                                                                                                capsys):
    """``--settings mir1k``: the rows train with the recipe's ``mir1k`` section (its combo, its rates) on the
    fully labelled tracks and a tape-speed copy of each per ``mir1k.shifts`` value; ``--settings`` is majl's."""
    from weakmir.train import checkpoint

    full, _ = _views(voice_corpus[0])
    run = tmp_path / "run"
    assert main(["train", "majl", str(full), "-o", str(run), "--recipe", "tiny", "--settings", "mir1k",
                 "--set", "mir1k.combo=UxH", "--set", "mir1k.shifts=[-7]", "--set", "mir1k.train.crops=4",
                 "--set", "mir1k.train.epochs=2", "--set", "mir1k.th=0.5", "--quiet"]) == 0
    r = json.loads((run / "results.json").read_text())
    s = r["summary"]
    assert s["settings"] == "mir1k" and s["combo"] == "UxH" and s["shifts"] == [-7] and s["th"] == 0.5
    assert s["tracks"]["full"] == 4 and s["rows"] == ["pipeline", "naive", "stage1"]  # 2 songs + their copies
    # 4 tracks x 4 crops / batch 4 = 4 steps per epoch, 2 epochs (the synth settings: 2 crops, 2 epochs)
    assert len(r["learning_curves"]["stage1"]) == 8 and len(r["learning_curves"]["naive"]) == 8
    _, meta = checkpoint.load(run / "checkpoints" / "stage1.ckpt")
    assert meta["kwargs"]["pe"] == "harmof0" and meta["kwargs"]["mss"] == "unet_jansson"
    page = (run / "report.md").read_text()
    assert "with the recipe's mir1k settings" in page and "4 full (2 and a copy of each at -7 semitones)" in page
    capsys.readouterr()
    assert main(["train", "weak-mic", str(full), "-o", str(tmp_path / "w"), "--settings", "mir1k"]) != 0
    assert "--settings applies to majl only" in capsys.readouterr().err and not (tmp_path / "w").exists()


def test_pitch_crepe_needs_no_training(tmp_path):
    sr = 16000
    t = np.arange(2 * sr) / sr
    sf.write(str(tmp_path / "tone.wav"), 0.4 * np.sin(2 * np.pi * 440.0 * t), sr)
    assert main(["pitch", "crepe", str(tmp_path / "tone.wav"), "-o", str(tmp_path / "o")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "o" / "tone" / "f0.csv")))
    f0 = np.array([float(r["f0_hz"]) for r in rows[10:-10]])
    assert (f0 > 0).all() and abs(1200 * np.log2(np.median(f0) / 440.0)) < 10


def test_train_majl_refuses_a_manifest_without_voice(voice_corpus, tmp_path, capsys):
    m = Manifest.read(voice_corpus[0])
    m = voice.with_labelling(m, "pitch")
    for t in m.tracks:
        for s in t.stems:
            s.f0 = None
    m.write(voice_corpus[0] / "majl_nof0.json")
    assert main(["train", "majl", str(voice_corpus[0] / "majl_nof0.json"), "-o", str(tmp_path / "r"), "--recipe",
                 "tiny", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "labelled 'pitch' but has no voice f0" in err and not (tmp_path / "r" / "results.json").exists()


@pytest.mark.skipif(not (Path(__file__).resolve().parents[3] / "shared" / "data" / "mir1k" / "Wavfile").is_dir(),
                    reason="../shared/data/mir1k absent")
def test_tiny_experiment(tmp_path):
    out = tmp_path / "exp"
    r = subprocess.run([sys.executable, "-m", "weakmir", "experiment", "majl", "--preset", "tiny", "-o", str(out),
                        "--quiet"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((out / "results.json").read_text())
    s = res["summary"]
    for k in ("sdr_pipeline", "sdr_naive", "sdr_stage1", "sdr_majl", "rpa_pipeline", "rpa_naive", "rpa_stage1",
              "rpa_majl", "rpa_crepe_on_separated"):
        assert np.isfinite(s[k]), k
        assert np.isfinite(s["mir1k"][k]), k
    T = res["tables"]
    assert set(T["combos"]) == {"UxC", "RxH"} and len(T["combos"]["UxC"]) == 8
    assert set(T["figure6"]) == {"0.5", "0.7"} and T["figure5"]
    for name in ("pipeline_mss", "pipeline_pe", "naive", "stage1", "majl"):
        assert (out / "checkpoints" / "mir1k" / f"{name}.ckpt").exists()
    page = (out / "report.html").read_text()
    assert "Figure 6" in page and "one run from seed 0" in page and "bench_majl_seeds.py" in page
    assert "bench_majl_seeds.py --folds 4" in page  # the MIR-1K section points to its held-out-clip check
    assert "octave up" in page
    M = T["mir1k"]
    for scored in [*M["rows"].values(), *M["peers"].values()]:  # RCA - RPA counts every octave: these two and more
        for v in scored["tracks"].values():
            assert 0 <= v["octave_up"] and 0 <= v["octave_down"]
            assert v["octave_up"] + v["octave_down"] <= v["rca"] - v["rpa"] + 1e-6
    assert res["recipe"]["full"] == 2
    assert "weakmir experiment majl" in r.stdout


def _recording_fit(seen: dict, trained):
    """A stand-in for ``majl._fit`` that applies the stage's start, "trains" the stages ``trained(name, cfg)``
    picks (every weight moved off its initialisation by 0.25) and records each stage's weights in ``seen``."""
    import torch

    def fake_fit(runner, name, model, step, tracks, n_tracks, cfg, settings, kwargs, trains=None, also=None, seed=0,
                 start=None):
        if start is not None:  # what _fit does before training a stage that is not saved yet
            start(model)
        if trained(name, cfg):
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.25)
        seen[name] = {k: v.clone() for k, v in model.state_dict().items()}
        return model

    return fake_fit


@pytest.mark.parametrize("init", ["stage1", "scratch"])
def test_stage2_init_starts_from_stage1_or_from_scratch(tmp_path, monkeypatch, init):
    """``init: stage1`` hands Stage II Stage I's JCF weights; ``scratch`` (the paper) a fresh JCF."""
    import torch

    from weakmir.experiments import majl as exp
    from weakmir.experiments.stages import StageRunner

    P, resolved = exp.recipe("tiny", [f"stage2.init={init}"])
    assert P.stage2.init == init
    seen = {}
    monkeypatch.setattr(exp, "_fit", _recording_fit(seen, lambda name, cfg: name.endswith("stage1")))
    runner = StageRunner(tmp_path / "checkpoints", resolved, "data", "majl")
    D = {"full": [], "stems": [], "pitch": []}
    exp.train_row(runner, P, D, "UxC", "majl_both", P.train, prefix="UxC_", cfg2=P.stage2)
    s1, s2 = seen.get("UxC_stage1"), seen["UxC_majl_both"]
    same = s1 is not None and all(torch.equal(s1[k], s2[k]) for k in s2)
    assert same == (init == "stage1")
    if init == "scratch":
        assert s1 is None  # Stage I is trained only for its pseudo labels, inside Stage II's data


def test_unknown_stage2_init_is_a_recipe_error():
    from weakmir.errors import WeakmirError
    from weakmir.experiments import majl as exp

    with pytest.raises(WeakmirError, match="init 'warm'"):
        exp.recipe("tiny", ["stage2.init=warm"])


def test_a_fresh_jcf_is_the_same_whatever_ran_before():
    """Rows start from one initialisation per seed, in any process (a run of a recipe is repeatable)."""
    import torch

    from weakmir.experiments import majl as exp

    P, _ = exp.recipe("tiny")
    a, _ = exp.make_jcf(P, "UxC")
    torch.rand(1000)  # whatever else drew from the global generator in between
    b, _ = exp.make_jcf(P, "UxC")
    c, _ = exp.make_jcf(P, "UxC", seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_the_recipe_seed_reaches_every_stage_of_every_row(tmp_path, monkeypatch):
    """``--set seed=3``: the warm start, the pipeline's modules, naive joint learning, Stage I and Stage II are
    all trained (crops, frames, dropout) and initialised from seed 3, not from the default 0."""
    import torch

    from weakmir.experiments import majl as exp
    from weakmir.experiments.stages import StageRunner

    P, resolved = exp.recipe("tiny", ["seed=3", "train.warmup=1"])
    assert resolved["seed"] == 3 and exp.recipe("tiny")[0].seed == 0
    seeds = {}

    def fake_fit(runner, name, model, step, tracks, n_tracks, cfg, settings, kwargs, seed=0, start=None, **kw):
        seeds[name] = seed
        if start is not None:
            start(model)
        return model

    monkeypatch.setattr(exp, "_fit", fake_fit)
    monkeypatch.setattr(exp, "pseudo_labels", lambda jcf, tracks: list(tracks))
    runner = StageRunner(tmp_path / "checkpoints", resolved, "data", "majl")
    D = {"full": [], "stems": [], "pitch": []}
    for row in ("pipeline", "naive", "stage1", "majl_both"):
        exp.train_row(runner, P, D, "UxC", row, P.train, prefix="UxC_", cfg2=P.stage2)
    assert {"U_warm_mss", "UxC_warm_pe", "UxC_pipeline_mss", "UxC_pipeline_pe", "UxC_naive", "UxC_stage1",
            "UxC_majl_both"} <= set(seeds)
    assert set(seeds.values()) == {3}
    a, b = exp.make_jcf(P, "UxC")[0].state_dict(), exp.make_jcf(P, "UxC", seed=3)[0].state_dict()
    c = exp.make_jcf(exp.recipe("tiny")[0], "UxC")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("share, repeats", [(0.0, 1), (0.5, 3), (0.75, 9)])
def test_stage2_full_share_lists_the_fully_labelled_tracks_that_share_of_the_union(tmp_path, monkeypatch, share, repeats):
    """``full_share``: 2 fully labelled + 6 single-labelled tracks; at 0.5 each full track is listed 3 times
    (6 of 12 crops' tracks), at 0 the plain union (the paper's); the step count stays that of the union."""
    from weakmir.experiments import majl as exp
    from weakmir.methods.majl import TrainConfig

    assert TrainConfig(full_share=share).full_repeats(2, 6) == repeats
    P, resolved = exp.recipe("tiny", [f"stage2.full_share={share}", "stage2.init=scratch"])
    got = {}

    def fake_fit(runner, name, model, step, tracks, n_tracks, cfg, settings, kwargs, **kw):
        if name.endswith("majl_both"):
            got.update(tracks=tracks(), n=n_tracks, settings=settings)
        return model

    monkeypatch.setattr(exp, "_fit", fake_fit)
    monkeypatch.setattr(exp, "pseudo_labels", lambda jcf, tracks: list(tracks))
    monkeypatch.setattr(exp, "filtered", lambda tracks, th: tracks)
    from types import SimpleNamespace

    D = {k: [SimpleNamespace(id=f"{k[0]}{i}") for i in range(2 if k == "full" else 3)] for k in ("full", "stems", "pitch")}
    from weakmir.experiments.stages import StageRunner

    exp.train_row(StageRunner(tmp_path, resolved, "data", "majl"), P, D, "UxC", "majl_both", P.train, prefix="UxC_",
                  cfg2=P.stage2)
    ids = [t.id for t in got["tracks"]]
    assert ids.count("f0") == ids.count("f1") == repeats
    assert sorted(i for i in ids if i[0] != "f") == ["p0", "p1", "p2", "s0", "s1", "s2"]
    assert got["n"] == 8
    assert ("full_share" in got["settings"]) == bool(share)


@pytest.mark.parametrize("extra, ids", [("both", ["p0", "p1", "p2", "s0", "s1", "s2"]), ("stems", ["s0", "s1", "s2"]),
                                        ("pitch", ["p0", "p1", "p2"])])
def test_mir1k_extra_picks_the_single_labelled_songs_of_its_stage2(tmp_path, monkeypatch, extra, ids):
    """``mir1k.extra``: MIR-1K's Stage II adds the synth corpus's stems-only songs, its pitch-only songs, or both;
    the clips it scores are never among them, and a value other than both / stems / pitch is a recipe error."""
    from types import SimpleNamespace

    from weakmir.errors import WeakmirError
    from weakmir.experiments import majl as exp
    from weakmir.experiments.stages import StageRunner

    P, resolved = exp.recipe("tiny", [f"mir1k.extra={extra}", "mir1k.stage2.full_share=0"])
    got = {}

    def fake_fit(runner, name, model, step, tracks, n_tracks, cfg, settings, kwargs, **kw):
        if name == "majl":
            got.update(ids=sorted(t.id for t in tracks()), n=n_tracks, extra=sorted(settings["extra"]))
        return model

    monkeypatch.setattr(exp, "_fit", fake_fit)
    monkeypatch.setattr(exp, "pseudo_labels", lambda jcf, tracks: list(tracks))
    monkeypatch.setattr(exp, "filtered", lambda tracks, th: tracks)
    D = {"mir1k_train": [SimpleNamespace(id=f"m{i}") for i in range(2)],
         **{k: [SimpleNamespace(id=f"{k[0]}{i}") for i in range(3)] for k in ("stems", "pitch")}}
    exp.run_task("mir1k/majl", {"mir1k": StageRunner(tmp_path, resolved, "data", "majl")}, P, D, None)
    assert got["ids"] == ["m0", "m1"] + ids and got["extra"] == ids and got["n"] == 2 + len(ids)
    with pytest.raises(WeakmirError, match="mir1k.extra 'voice'"):
        exp.recipe("tiny", ["mir1k.extra=voice"])


def test_mir1k_shifts_add_transposed_copies_of_the_training_clips_to_every_row(tmp_path, monkeypatch):
    """``mir1k.shifts``: every MIR-1K row trains on the clips and one tape-speed copy of each per value (the
    copies' f0 moved with them); the synth extras are not copied; a shift of 0 or beyond an octave is a recipe
    error."""
    from weakmir.errors import WeakmirError
    from weakmir.experiments import majl as exp
    from weakmir.experiments.stages import StageRunner

    P, resolved = exp.recipe("tiny", ["mir1k.shifts=[-7, 5]", "mir1k.stage2.full_share=0", "mir1k.extra=pitch"])
    got = {}

    def fake_fit(runner, name, model, step, tracks, n_tracks, cfg, settings, kwargs, **kw):
        got[name] = ([t for t in tracks()], n_tracks)
        return model

    monkeypatch.setattr(exp, "_fit", fake_fit)
    monkeypatch.setattr(exp, "_fit_apart", lambda runner, P, combo, jcf, full, *a, **k: got.update(pipeline=(full, 0)))
    monkeypatch.setattr(exp, "pseudo_labels", lambda jcf, tracks: list(tracks))
    monkeypatch.setattr(exp, "filtered", lambda tracks, th: tracks)

    def track(id, hz, lab="full"):
        x = np.sin(2 * np.pi * hz * np.arange(16000) / 16000).astype(np.float32)
        return voice.VoiceTrack(id, lab, x, None if lab == "pitch" else x, np.full(51, hz, np.float32))

    D = {"mir1k_train": [track("m0", 220.0), track("m1", 330.0)], "stems": [], "pitch": [track("p0", 440.0, "pitch")]}
    runners = {"mir1k": StageRunner(tmp_path, resolved, "data", "majl")}
    for row in ("pipeline", "naive", "stage1", "majl"):
        exp.run_task(f"mir1k/{row}", runners, P, D, None)
    ids = ["m0", "m1", "m0@-7.00st", "m1@-7.00st", "m0@+5.00st", "m1@+5.00st"]
    for row in ("pipeline", "naive", "stage1"):
        assert [t.id for t in got[row][0]] == ids, row
    assert [t.id for t in got["majl"][0]] == ids + ["p0"] and got["majl"][1] == 7
    low = got["stage1"][0][2]
    assert np.median(low.f0[low.f0 > 0]) == pytest.approx(220.0 * 2 ** (-7 / 12), rel=1e-5)
    assert len(low.mix) == pytest.approx(16000 * 2 ** (7 / 12), abs=2)
    for bad in ("[0]", "[-13]"):
        with pytest.raises(WeakmirError, match="mir1k.shifts"):
            exp.recipe("tiny", [f"mir1k.shifts={bad}"])


def test_mir1k_th_thresholds_the_mir1k_stage2_alone(tmp_path, monkeypatch):
    """``mir1k.th`` is the MIR-1K MAJL row's eq. 8 threshold (0: the recipe's ``th``); the synth rows keep
    theirs; outside [0, 1] it is a recipe error."""
    from weakmir.errors import WeakmirError
    from weakmir.experiments import majl as exp
    from weakmir.experiments.stages import StageRunner

    got = []
    monkeypatch.setattr(exp, "_fit", lambda runner, name, model, step, tracks, n, cfg, settings, kw, **k:
                        got.append((name, settings.get("th"))) or model)
    monkeypatch.setattr(exp, "pseudo_labels", lambda jcf, tracks: list(tracks))

    def track(id, lab="full"):
        x = np.sin(2 * np.pi * 220.0 * np.arange(16000) / 16000).astype(np.float32)
        return voice.VoiceTrack(id, lab, x, None if lab == "pitch" else x, np.full(51, 220.0, np.float32))

    D = {"mir1k_train": [track("m0")], "full": [track("f0")], "stems": [], "pitch": [track("p0", "pitch")]}
    for sets, want in ((["mir1k.th=0.9"], 0.9), ([], 0.7)):
        P, resolved = exp.recipe("tiny", sets + ["mir1k.extra=pitch", "mir1k.stage2.full_share=0"])
        got.clear()
        runners = {"mir1k": StageRunner(tmp_path / "m", resolved, "d", "majl"),
                   "synth": StageRunner(tmp_path / "s", resolved, "d", "majl")}
        exp.run_task("mir1k/majl", runners, P, D, None)
        exp.run_task("UxC/majl_pitch", runners, P, D, None)
        assert dict(got)["majl"] == want and dict(got)["UxC_majl_pitch"] == P.th == 0.7
    with pytest.raises(WeakmirError, match="mir1k.th"):
        exp.recipe("tiny", ["mir1k.th=1.5"])


def test_full_share_out_of_range_is_a_recipe_error():
    from weakmir.errors import WeakmirError
    from weakmir.experiments import majl as exp

    with pytest.raises(WeakmirError, match="full_share 1"):
        exp.recipe("tiny", ["stage2.full_share=1.0"])


def test_from_first_note_cuts_every_array_by_the_same_frames():
    from weakmir.experiments.majl import from_first_note

    hop, T = 320, 200
    f0 = np.zeros(T, np.float32)
    f0[120:150] = 220.0
    mix = np.arange((T - 1) * hop, dtype=np.float32)
    t = voice.VoiceTrack("s", "full", mix, mix * 2, f0, conf_mss=np.arange(T, dtype=np.float32), hop=hop)
    c = from_first_note(t, lead_in=0.5)  # 25 frames of lead-in: starts at frame 95
    assert c.mix[0] == 95 * hop and c.voice[0] == 2 * 95 * hop and c.frames == T - 95
    assert len(c.f0) == len(c.conf_mss) == len(c.conf_pe) == c.frames
    assert np.flatnonzero(c.f0 > 0)[0] == 25 and c.conf_mss[0] == 95  # the labels stay on their audio
    silent = voice.VoiceTrack("q", "stems", mix, mix, None, hop=hop)
    assert from_first_note(silent) is silent  # no f0: nothing to go by, kept whole


def test_warmup_rows_start_from_the_modules_trained_apart(tmp_path, monkeypatch):
    """``warmup``: the pipeline goes on from the warm MSS and PE, naive joint learning and Stage I start from the
    same pair, and every row of a combination waits for its ``warm`` task."""
    import torch

    from weakmir.experiments import majl as exp
    from weakmir.experiments.stages import StageRunner

    P, resolved = exp.recipe("tiny", ["train.warmup=3", "mir1k.train.warmup=1"])
    seen = {}
    monkeypatch.setattr(exp, "_fit", _recording_fit(seen, lambda name, cfg: "warm" in name and cfg.epochs == 3))
    runner = StageRunner(tmp_path / "checkpoints", resolved, "data", "majl")
    D = {"full": [], "stems": [], "pitch": []}
    for row in ("pipeline", "naive", "stage1"):
        exp.train_row(runner, P, D, "UxC", row, P.train, prefix="UxC_")
    warm = {**{f"mss.{k}": v for k, v in seen["U_warm_mss"].items()}, **{f"pe.{k}": v for k, v in seen["UxC_warm_pe"].items()}}
    fresh = exp.make_jcf(P, "UxC")[0].state_dict()
    assert not all(torch.equal(fresh[k], warm[k]) for k in warm)
    for row in ("naive", "stage1"):
        assert all(torch.equal(seen[f"UxC_{row}"][k], warm[k]) for k in warm)
    assert all(torch.equal(seen["UxC_pipeline_mss"][k], seen["U_warm_mss"][k]) for k in seen["U_warm_mss"])
    assert all(torch.equal(seen["UxC_pipeline_pe"][k], seen["UxC_warm_pe"][k]) for k in seen["UxC_warm_pe"])
    tasks = exp.tasks_of(P, mir1k=True)
    assert list(tasks)[:3] == ["UxC/warm", "RxH/warm", "mir1k/warm"]  # first: everything waits for them
    for t, needs in tasks.items():
        where, row = t.split("/")
        if row != "warm":
            assert needs == ((f"{where}/stage1",) if row.startswith("majl") else (f"{where}/warm",))
    assert "mir1k/warm" not in exp.tasks_of(exp.recipe("tiny")[0], mir1k=True)
    quick = exp.tasks_of(exp.recipe("quick")[0], mir1k=True)
    assert quick["UxC/warm"] == () and quick["UxH/warm"] == ("UxC/warm",)  # one warm U-Net for both


def test_lr_scale_sets_the_pe_modules_rate_and_bad_module_entries_are_recipe_errors():
    """quick: the pretrained CREPE fine-tunes at a tenth of the row's rate (U x C, and MIR-1K's 5e-4 -> 5e-5),
    HarmoF0 from scratch at the row's rate; a misspelt module key or a scaled separator is refused."""
    from weakmir.errors import WeakmirError
    from weakmir.experiments import majl as exp

    P, _ = exp.recipe("quick")
    assert exp.pe_rate(P, "UxC", P.train) == pytest.approx(P.train.lr * 0.1)
    assert exp.pe_rate(P, "UxH", P.train) == pytest.approx(P.train.lr)
    assert exp.pe_rate(P, "UxC", P.mir1k.train) == pytest.approx(5e-5)
    assert exp.pe_rate(P, "UxC", dataclasses.replace(P.train, pe_lr=0.01)) == pytest.approx(1e-3)  # pe_lr x lr_scale
    with pytest.raises(WeakmirError, match="module C"):
        exp.recipe("quick", ["modules.C.lr_scal=0.1"])
    with pytest.raises(WeakmirError, match="lr_scale 0"):
        exp.recipe("quick", ["modules.C.lr_scale=0"])
    with pytest.raises(WeakmirError, match="PE module's"):
        exp.recipe("quick", ["modules.U.lr_scale=0.5"])


def test_scoring_in_pieces_and_two_processes_gives_the_scores_of_one_pass(tmp_path, capsys, monkeypatch):
    """``score_jobs``: each job runs in pieces of at most ``chunk_seconds`` of audio, and the scores merged from
    the pieces are those of one pass over the split (:func:`score`, :func:`crepe_scores` on the pipeline's
    voice), here and in two spawned processes that read the tracks from the pickle. The heaviest job runs
    first and the peer's piece as soon as its pipeline's piece is scored, ahead of a lighter job given before
    both; with ``progress`` the bar counts the seconds of audio of every piece (quiet without)."""
    import pickle

    import torch

    from weakmir.experiments import majl as exp
    from weakmir.models import build

    rng = np.random.default_rng(0)
    hop = 320

    def track(name, n, hz):
        t = np.arange(n) / 16000
        f0 = np.full(n // hop + 1, hz, np.float32)
        v = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
        return voice.VoiceTrack(name, "full", v + 0.05 * rng.standard_normal(n).astype(np.float32), v, f0, hop=hop)

    D = {"test": [track("s", 48000, 220.0)], "valid": [track("v1", 16000, 196.0), track("v2", 16000, 330.0)]}
    assert exp.chunks(D["valid"], 1.0) == [(0, 1), (1, 2)] and exp.chunks(D["valid"], 2.0) == [(0, 2)]
    assert exp.chunks(D["test"], 1.0) == [(0, 1)] and exp.chunks([], 1.0) == [(0, 0)]
    (tmp_path / "data.pkl").write_bytes(pickle.dumps(D))
    torch.manual_seed(0)
    jcf = build("majl_jcf", mss="unet_jansson", mss_kwargs={"channels": [4, 8]}, pe="crepe", pe_kwargs={"capacity": 1})
    jobs = {"other": ("model", "valid", jcf, False), "pipe": ("model", "test", jcf, True)}
    after = {"peer": ("pipe", "test")}
    ran, job = [], exp._score_job
    monkeypatch.setattr(exp, "_score_job", lambda *a, **k: ran.append((a[0], a[1], a[4], a[5])) or job(*a, **k))
    here = exp.score_jobs(jobs, after, "tiny", D, 1, None, chunk_seconds=1.0)
    assert ran == [("model", "test", 0, 1), ("crepe", "test", 0, 1), ("model", "valid", 0, 1), ("model", "valid", 1, 2)]
    monkeypatch.undo()  # the pool pickles the job function by name
    assert "scoring" not in capsys.readouterr().err
    waves = {}
    whole = {"other": exp.score(jcf, D["valid"]), "pipe": exp.score(jcf, D["test"], waves=waves)}
    whole["peer"] = exp.crepe_scores(D["test"], "tiny", waves)
    assert here == whole
    pool = exp.score_jobs(jobs, after, "tiny", D, 2, tmp_path / "data.pkl", progress=True, chunk_seconds=1.0)
    err = capsys.readouterr().err
    assert "scoring: 100%" in err and "8/8 s of audio" in err, err
    assert set(pool) == {"pipe", "other", "peer"} and list(pool["other"]["tracks"]) == ["v1", "v2"]
    for k in ("pipe", "other"):
        for m in ("sdr", "rpa", "rca", "gnsdr"):
            assert pool[k]["overall"][m] == pytest.approx(here[k]["overall"][m], abs=1e-6)
    assert 0.0 <= pool["peer"]["overall"]["rpa"] <= 100.0 and set(pool["peer"]["tracks"]) == {"s"}
    with pytest.raises(ValueError, match="not given"):
        exp.score_jobs(jobs, {"peer": ("nowhere", "test")}, "tiny", D, 1, None)


def test_a_held_out_song_without_singing_leaves_the_means_to_the_songs_that_sing():
    """A held-out track whose voice is silent and whose f0 is unvoiced throughout (an instrumental in a user's test
    split) has no SDR, NSDR or RPA (NaN per track, not mir_eval's 0): the row's RPA is the singing track's and its
    GNSDR too (it was NaN), SDR the museval median over the defined tracks; with no singing track at all, NaN."""
    import torch

    from weakmir.experiments import majl as exp
    from weakmir.models import build

    n, hop = 16000, 320
    t = np.arange(n) / 16000
    v = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    noise = (0.05 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    sings = voice.VoiceTrack("sings", "full", v + noise, v, np.full(n // hop + 1, 220.0, np.float32), hop=hop)
    silent = voice.VoiceTrack("instrumental", "full", noise, np.zeros(n, np.float32), np.zeros(n // hop + 1, np.float32),
                              hop=hop)
    torch.manual_seed(0)
    jcf = build("majl_jcf", mss="unet_jansson", mss_kwargs={"channels": [4, 8]}, pe="crepe", pe_kwargs={"capacity": 1})
    both = exp.score(jcf, [silent, sings])
    alone = exp.score(jcf, [sings])
    per = both["tracks"]["instrumental"]
    assert all(np.isnan(per[k]) for k in ("sdr", "nsdr", "rpa", "rca", "octave_up")), per
    for k in ("rpa", "rca", "sdr", "gnsdr"):
        assert both["overall"][k] == pytest.approx(alone["overall"][k], abs=1e-9), k
    assert np.isfinite(both["overall"]["gnsdr"])
    none = exp.overall({"instrumental": per})
    assert np.isnan(none["rpa"]) and np.isnan(none["gnsdr"]) and np.isnan(none["sdr"])


@pytest.mark.parametrize("name", ["tiny", "quick", "paper"])
def test_every_packaged_recipe_builds_each_of_its_combinations(name):
    """A recipe's module entries are only built when a row trains, so a bad kwarg in ``paper.yaml`` (never run
    here: it needs a GPU) would fail hours into a run. Every combination of every packaged recipe, the MIR-1K
    rows' included, builds and maps a 0.64-s mixture to a voice of the same length and a pitch vector per frame
    on the PE's grid (CREPE 360 bins, HarmoF0 352)."""
    import torch

    from weakmir.experiments.majl import make_jcf, mir1k_combo, recipe

    P, _ = recipe(name)
    combos = [(c, P.modules) for c in P.combos] + [mir1k_combo(P)]
    mix = torch.randn(1, 10240) * 0.1
    for combo, modules in combos:
        jcf, kw = make_jcf(P, combo, modules)
        jcf.eval()
        with torch.no_grad():
            out = jcf(mix)
        bins = {"crepe": 360, "harmof0": 352}[kw["pe"]]
        assert out["wave"].shape == (1, 10240), (name, combo)
        assert out["pitch"].shape == (1, 10240 // 320 + 1, bins), (name, combo)
        assert torch.isfinite(out["pitch"]).all() and ((out["pitch"] >= 0) & (out["pitch"] <= 1)).all()
