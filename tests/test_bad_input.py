"""The bad-input matrix: one row per (verb, bad input). Every row must exit with status 2, print one line
(``weakmir: error: ...`` or argparse's one-line complaint) that names the offending file or option, show
no traceback, and leave every file of the test's world (inputs and outputs) as it was, by checksum.

Rows run in-process (``weakmir.cli.main``, stdout and stderr captured at the file-descriptor level, so a
C library's output would count as a second line); two of them also run as real processes. Below the
matrix: conversion notices, a corrected synth after a failed one, and Ctrl-C / SIGTERM on separate.
A new verb adds its rows to ROWS.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from weakmir.cli import main
from weakmir.data.labels import OPENMIC

RO = Path("/sys/weakmir-matrix/out")  # a folder that cannot be made (read-only /sys, even for root)


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True)
    except OSError:
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def _tone(seconds: float, sr: int, channels: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.4 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 331 * t)
    return np.stack([x] * channels, axis=1).astype(np.float32)


def _variant(world: Path, name: str, change) -> Path:
    """A copy of the corpus manifest in ``world/name/`` (referencing the corpus in place), changed by
    ``change(dict)``."""
    d = json.loads((world / "corpus" / "manifest.json").read_text())
    root = (world / "corpus").resolve()
    for t in d["tracks"]:
        for k in ("mixture", "score"):
            t[k] = str(root / t[k]) if t[k] else None
        for s in t["stems"]:
            for k in ("path", "clean_path", "notes", "f0"):
                s[k] = str(root / s[k]) if s[k] else None
    d["references_in_place"] = [str(root)]
    change(d)
    (world / name).mkdir()
    (world / name / "manifest.json").write_text(json.dumps(d))
    return world / name


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Every input the rows use, in one folder: a tiny corpus and bad variants of everything."""
    from weakmir.data.synth.build import SynthConfig, build_corpus
    from weakmir.errors import SoundFontError
    from weakmir.models import build
    from weakmir.train.checkpoint import save

    w = tmp_path_factory.mktemp("world")
    try:
        build_corpus(w / "corpus", SynthConfig(preset="chorale", tracks=2, seconds=2.0, sample_rate=16000, seed=1,
                                               splits=(0.5, 0.0, 0.5), soundfont="TimGM6mb", jobs=1), progress=False)
    except SoundFontError as e:
        pytest.skip(f"rendering needs FluidSynth ({e}); 'make test' installs it")
    m = json.loads((w / "corpus" / "manifest.json").read_text())
    track = m["tracks"][0]
    stem = next(s for s in track["stems"] if s["f0"])
    save(w / "sep.ckpt", build("mask"), {})
    kw = {"instruments": ["piano"], "n_fft": 512, "hop_length": 256, "channels": 8, "hidden": 8, "repeats": 1,
          "blocks": 2}
    save(w / "trans.ckpt", build("tcn_transcriptor", **kw), kw)
    (w / "garbage.ckpt").write_bytes(os.urandom(2000))
    emb = {"channels": [4, 4, 4, 8]}
    save(w / "emb.ckpt", build("mel_embedding", **emb), emb)
    tag_kw = {"head": "mil_attention", "head_kwargs": {}, "classes": list(OPENMIC), "embedding": emb}
    save(w / "tagger.ckpt", build("weak_mic_tagger", **tag_kw), tag_kw)
    jcf = build("majl_jcf", mss="unet_jansson", mss_kwargs={"channels": [4, 8]}, pe="crepe", pe_kwargs={"capacity": 1})
    save(w / "jcf.ckpt", jcf, jcf.kwargs())
    save(w / "pe.ckpt", jcf.pe, jcf.pe.kwargs())
    dwm = build("majl_dwm")
    save(w / "dwm.ckpt", dwm, dwm.kwargs())
    (w / "m1k_mono" / "Wavfile").mkdir(parents=True)
    sf.write(w / "m1k_mono" / "Wavfile" / "amy_1_01.wav", _tone(1, 16000, 1)[:, 0], 16000)
    (w / "m1k_pv" / "Wavfile").mkdir(parents=True)
    (w / "m1k_pv" / "PitchLabel").mkdir()
    sf.write(w / "m1k_pv" / "Wavfile" / "amy_1_01.wav", _tone(1, 16000, 2), 16000)
    (w / "m1k_pv" / "PitchLabel" / "amy_1_01.pv").write_text("0\n" * 10)  # a 1-s clip has 49 frames
    (w / "st500").mkdir()
    (w / "st500" / "MIR-ST500_corrected.json").write_text(json.dumps({"1": [[0.1, 0.5, 60]]}))
    np.save(w / "nan.npy", np.full((10, 128), np.nan, np.float32))
    (w / "bad.npy").write_bytes(b"not numpy")
    sr = 44100
    for d in ("a", "b"):
        (w / d).mkdir()
        sf.write(w / d / "mix.flac", _tone(2, sr, 2), sr)
    whole = (w / "a" / "mix.flac").read_bytes()
    (w / "cut.flac").write_bytes(whole[: len(whole) // 2])
    (w / "empty.wav").write_bytes(b"")
    sf.write(w / "six.wav", _tone(1, sr, 6), sr)
    sf.write(w / "mono.wav", _tone(1, sr, 1)[:, 0], sr)
    sf.write(w / "low.wav", _tone(1, 8000, 2), 8000)
    wav = (w / "mono.wav").read_bytes()
    (w / "short.wav").write_bytes(wav[: len(wav) // 2])
    (w / "ow" / "vocals").mkdir(parents=True)
    sf.write(w / "ow" / "vocals" / "vocals.wav", _tone(1, sr, 2), sr)
    (w / "afile").write_text("not a folder\n")
    (w / "bad.sf2").write_bytes(os.urandom(4000))
    (w / "emptydir").mkdir()
    (w / "mdir" / "manifest.json").mkdir(parents=True)
    (w / "junk").mkdir()
    (w / "junk" / "manifest.json").write_text("{not json")
    (w / "none").mkdir()
    (w / "none" / "manifest.json").write_text(json.dumps({"format": "weakmir.manifest", "version": 1, "tracks": []}))

    def outside(d):
        d["tracks"][0]["stems"][0]["path"] = "../../../../../../../../etc/passwd"

    _variant(w, "outside", outside)
    _variant(w, "badlabel", lambda d: d["tracks"][0]["stems"][0]["labels"].update({"present": ["kazoo"]}))
    _variant(w, "notrain", lambda d: [t.update({"split": "test"}) for t in d["tracks"]])
    _variant(w, "alltrain", lambda d: [t.update({"split": "train"}) for t in d["tracks"]])

    def six_stem(d):
        s = d["tracks"][0]["stems"][0]
        sf.write(w / "six_stem.wav", _tone(2, 16000, 6), 16000)
        s.update(path=str(w / "six_stem.wav"), clean_path=None, channels=6, corruption=None)
        s["provenance"].pop("source_label", None)
        d["references_in_place"].append(str(w.resolve()))

    _variant(w, "sixstem", six_stem)
    # estimates
    tid, sid = track["id"], stem["id"]
    for name, text in [("nan_f0", "time_s,frequency_hz,voicing\n0.0,440,1\n0.01,nan,1\n"),
                       ("inf_f0", "time_s,frequency_hz,voicing\n0.0,440,1\n0.01,inf,1\n")]:
        (w / name / tid).mkdir(parents=True)
        (w / name / tid / f"{sid}.csv").write_text(text)
    (w / "bad_mid" / tid).mkdir(parents=True)
    (w / "bad_mid" / tid / f"{next(s for s in track['stems'] if s['notes'])['id']}.mid").write_bytes(
        b"MThd\x00\x00\x00\x06" + os.urandom(40))
    (w / "nan_tags.json").write_text(json.dumps({tid: {"violin": float("nan")}}))  # NaN, as json writes it
    (w / "str_tags.json").write_text(json.dumps({tid: {"violin": "high"}}))
    (w / "six_est" / tid).mkdir(parents=True)
    # a six-channel estimate for every reference label of the first track
    from weakmir.data.manifest import Manifest
    from weakmir.evaluate import reference_names

    corpus = Manifest.read(w / "corpus")
    for n, _ in reference_names(corpus.track(tid), "label"):
        sf.write(w / "six_est" / tid / f"{n}.wav", _tone(2, 16000, 6), 16000)
    # musdb-hq trees with one bad stem each
    for name, bad in [("hq_empty", None), ("hq_six", 6)]:
        d = w / name / "train" / "Artist - Song"
        d.mkdir(parents=True)
        for lab in ("vocals", "bass", "drums", "other"):
            sf.write(d / f"{lab}.wav", _tone(1, sr, 2), sr)
        if bad is None:
            (d / "drums.wav").write_bytes(b"")
        else:
            sf.write(d / "drums.wav", _tone(1, sr, bad), sr)
    return w


def _tree(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


# (row id, argv with {w} for the world folder and {out} for a fresh output folder, what the line must name)
ROWS = [
    # synth
    ("synth/out is a file", "synth {w}/afile --tracks 1 --seconds 1", "afile: is a file"),
    ("synth/read-only out", f"synth {RO} --tracks 1 --seconds 1", "cannot write"),
    ("synth/corrupt soundfont", "synth {out} --soundfont {w}/bad.sf2 --tracks 1 --seconds 1", "bad.sf2"),
    ("synth/missing soundfont", "synth {out} --soundfont {w}/nope.sf2 --tracks 1", "nope.sf2"),
    ("synth/--tracks 0", "synth {out} --tracks 0", "--tracks"),
    ("synth/--seconds -1", "synth {out} --seconds -1", "--seconds"),
    ("synth/--sample-rate 0", "synth {out} --sample-rate 0", "--sample-rate"),
    # info
    ("info/manifest.json is a folder", "info {w}/mdir", "mdir/manifest.json: is a folder"),
    ("info/malformed JSON", "info {w}/junk", "junk/manifest.json: malformed JSON"),
    ("info/no tracks", "info {w}/none", "holds no tracks"),
    ("info/missing manifest", "info {w}/nowhere", "nowhere"),
    ("info/stem path outside the corpus", "info {w}/outside", "etc/passwd lies outside the corpus folder"),
    ("info/unknown label", "info {w}/badlabel", "kazoo"),
    # evaluate
    ("evaluate/out is a file", "evaluate {w}/corpus oracle --task pitch -o {w}/afile", "afile: is a file"),
    ("evaluate/read-only out", f"evaluate {{w}}/corpus oracle --task pitch -o {RO}", "cannot write"),
    ("evaluate/corrupt .mid estimate", "evaluate {w}/corpus {w}/bad_mid --task transcription -o {out}", ".mid"),
    ("evaluate/NaN in an f0 estimate", "evaluate {w}/corpus {w}/nan_f0 --task pitch -o {out}", "NaN or infinite"),
    ("evaluate/Inf in an f0 estimate", "evaluate {w}/corpus {w}/inf_f0 --task pitch -o {out}", "inf_f0"),
    ("evaluate/NaN tag score", "evaluate {w}/corpus {w}/nan_tags.json --task tagging -o {out}", "nan_tags.json"),
    ("evaluate/string tag score", "evaluate {w}/corpus {w}/str_tags.json --task tagging -o {out}", "str_tags.json"),
    ("evaluate/6-channel estimate", "evaluate {w}/corpus {w}/six_est --task separation -o {out}", "has 6 channels"),
    ("evaluate/6-channel reference stem", "evaluate {w}/sixstem oracle --task separation -o {out}",
     "six_stem.wav: has 6 channels"),
    ("evaluate/missing estimates", "evaluate {w}/corpus {w}/emptydir --task pitch -o {out}", "estimate missing"),
    ("evaluate/would overwrite an input", "evaluate {w}/corpus {w}/junk/manifest.json --task tagging -o {w}/junk",
     "junk/manifest.json"),
    # dataset
    ("dataset/musdb-hq zero-length stem", "dataset musdb-hq {w}/hq_empty -o {out}", "drums.wav: is empty"),
    ("dataset/musdb-hq 6-channel stem", "dataset musdb-hq {w}/hq_six -o {out}", "drums.wav: has 6 channels"),
    ("dataset/out is a file", "dataset musdb-hq {w}/hq_six -o {w}/afile", "afile: is a file"),
    ("dataset/bach10 empty folder", "dataset bach10 {w}/emptydir -o {out}", "emptydir"),
    ("dataset/no such root", "dataset slakh {w}/nowhere -o {out}", "nowhere"),
    ("dataset/openmic without features", "dataset openmic {w}/emptydir -o {out}", "emptydir"),
    ("dataset/mir1k without Wavfile", "dataset mir1k {w}/emptydir -o {out}", "no Wavfile"),
    ("dataset/mir1k mono clip", "dataset mir1k {w}/m1k_mono -o {out}", "amy_1_01.wav: 1 channel"),
    ("dataset/mir1k label of another clip", "dataset mir1k {w}/m1k_pv -o {out}", "amy_1_01.pv: 10 frames"),
    ("dataset/medleydb layout missing", "dataset medleydb {w}/emptydir -o {out}", "neither Audio"),
    ("dataset/mir-st500 without audio", "dataset mir-st500 {w}/st500 -o {out}", "no audio was found"),
    # separate
    ("separate/two inputs, one output name", "separate {w}/sep.ckpt {w}/a/mix.flac {w}/b/mix.flac -o {out}",
     "both would write"),
    ("separate/--chunk-seconds 0", "separate {w}/sep.ckpt {w}/a/mix.flac -o {out} --chunk-seconds 0", "--chunk-seconds"),
    ("separate/--chunk-seconds -2", "separate {w}/sep.ckpt {w}/a/mix.flac -o {out} --chunk-seconds -2",
     "--chunk-seconds"),
    ("separate/--context-seconds -3", "separate {w}/sep.ckpt {w}/a/mix.flac -o {out} --context-seconds -3",
     "--context-seconds"),
    ("separate/overlap not shorter than chunk",
     "separate {w}/sep.ckpt {w}/a/mix.flac -o {out} --chunk-seconds 1 --overlap-seconds 1", "--overlap-seconds"),
    ("separate/truncated FLAC", "separate {w}/sep.ckpt {w}/cut.flac -o {out}", "cut.flac"),
    ("separate/zero-length file", "separate {w}/sep.ckpt {w}/empty.wav -o {out}", "empty.wav: is empty"),
    ("separate/missing file", "separate {w}/sep.ckpt {w}/nope.wav -o {out}", "nope.wav"),
    ("separate/6-channel input", "separate {w}/sep.ckpt {w}/six.wav -o {out}", "six.wav: has 6 channels"),
    ("separate/--device nope", "separate {w}/sep.ckpt {w}/a/mix.flac -o {out} --device nope", "--device nope"),
    ("transcribe/--device cuda:7", "transcribe {w}/trans.ckpt {w}/a/mix.flac -o {out} --device cuda:7",
     "--device cuda:7"),
    ("pitch/--device fpga", "pitch {w}/jcf.ckpt {w}/a/mix.flac -o {out} --device fpga", "--device fpga"),
    ("separate/transcriptor checkpoint", "separate {w}/trans.ckpt {w}/a/mix.flac -o {out}", "not a separator"),
    ("separate/MAJL pitch estimator checkpoint", "separate {w}/pe.ckpt {w}/a/mix.flac -o {out}",
     "pitch_estimator checkpoints are for weakmir pitch"),
    ("separate/corrupt checkpoint", "separate {w}/garbage.ckpt {w}/a/mix.flac -o {out}", "garbage.ckpt"),
    ("separate/out is a file", "separate {w}/sep.ckpt {w}/a/mix.flac -o {w}/afile", "afile: is a file"),
    ("separate/out is the input", "separate {w}/sep.ckpt {w}/a/mix.flac -o {w}/a/mix.flac", "is the input file"),
    ("separate/read-only out", f"separate {{w}}/sep.ckpt {{w}}/a/mix.flac -o {RO}", "cannot write"),
    ("separate/would overwrite an input", "separate {w}/sep.ckpt {w}/ow/vocals/vocals.wav -o {w}/ow",
     "would overwrite the input"),
    # transcribe
    ("transcribe/separator checkpoint", "transcribe {w}/sep.ckpt {w}/a/mix.flac -o {out}", "not a transcriptor"),
    ("transcribe/two inputs, one output name", "transcribe {w}/trans.ckpt {w}/a/mix.flac {w}/b/mix.flac -o {out}",
     "both would write"),
    ("transcribe/out is a file", "transcribe {w}/trans.ckpt {w}/a/mix.flac -o {w}/afile", "afile: is a file"),
    ("transcribe/read-only out", f"transcribe {{w}}/trans.ckpt {{w}}/a/mix.flac -o {RO}", "cannot write"),
    ("transcribe/--threshold 1.5", "transcribe {w}/trans.ckpt {w}/a/mix.flac -o {out} --threshold 1.5", "--threshold"),
    ("transcribe/truncated FLAC", "transcribe {w}/trans.ckpt {w}/cut.flac -o {out}", "cut.flac"),
    # tag
    ("tag/separator checkpoint", "tag {w}/sep.ckpt {w}/a/mix.flac -o {out}", "not a tagger"),
    ("tag/embedding checkpoint", "tag {w}/emb.ckpt {w}/a/mix.flac -o {out}", "not a tagger"),
    ("tag/truncated FLAC", "tag {w}/tagger.ckpt {w}/cut.flac -o {out}", "cut.flac"),
    ("tag/zero-length file", "tag {w}/tagger.ckpt {w}/empty.wav -o {out}", "empty.wav: is empty"),
    ("tag/NaN features", "tag {w}/tagger.ckpt {w}/nan.npy -o {out}", "nan.npy"),
    ("tag/not a feature file", "tag {w}/tagger.ckpt {w}/bad.npy -o {out}", "bad.npy: not a feature file"),
    ("tag/--threshold 1.5", "tag {w}/tagger.ckpt {w}/a/mix.flac -o {out} --threshold 1.5", "--threshold"),
    ("tag/two inputs, one output name", "tag {w}/tagger.ckpt {w}/a/mix.flac {w}/b/mix.flac -o {out}", "both would write"),
    ("tag/read-only out", f"tag {{w}}/tagger.ckpt {{w}}/a/mix.flac -o {RO}", "cannot write"),
    # pitch
    ("pitch/separator checkpoint", "pitch {w}/sep.ckpt {w}/a/mix.flac -o {out}", "not a voice_pitch"),
    ("pitch/MAJL dynamic weights checkpoint", "pitch {w}/dwm.ckpt {w}/a/mix.flac -o {out}",
     "dynamic_weights checkpoints are for no verb"),
    ("pitch/missing file", "pitch {w}/jcf.ckpt {w}/nope.wav -o {out}", "nope.wav"),
    ("pitch/truncated FLAC", "pitch {w}/jcf.ckpt {w}/cut.flac -o {out}", "cut.flac"),
    ("pitch/zero-length file", "pitch crepe {w}/empty.wav -o {out}", "empty.wav: is empty"),
    ("pitch/garbage checkpoint", "pitch {w}/garbage.ckpt {w}/a/mix.flac -o {out}", "garbage.ckpt"),
    ("pitch/--chunk-seconds 0", "pitch {w}/jcf.ckpt {w}/a/mix.flac -o {out} --chunk-seconds 0", "--chunk-seconds"),
    ("pitch/read-only out", f"pitch {{w}}/jcf.ckpt {{w}}/a/mix.flac -o {RO}", "cannot write"),
    # features
    ("features/tagger checkpoint", "features {w}/tagger.ckpt {w}/a/mix.flac -o {out}", "not an embedding"),
    ("features/missing file", "features {w}/emb.ckpt {w}/nope.wav -o {out}", "nope.wav"),
    ("features/out is a file", "features {w}/emb.ckpt {w}/a/mix.flac -o {w}/afile", "afile: is a file"),
    # refine
    ("refine/output replaces the input manifest", "refine {w}/corpus -o {w}/corpus --steps 2 --iterations 1 --quiet",
     "would overwrite the input"),
    ("refine/out is a file", "refine {w}/corpus -o {w}/afile --steps 2 --iterations 1 --quiet", "afile: is a file"),
    ("refine/read-only out", f"refine {{w}}/corpus -o {RO} --steps 2 --iterations 1 --quiet", "cannot write"),
    ("refine/--iterations 0", "refine {w}/corpus -o {out} --iterations 0", "--iterations"),
    ("refine/stem path outside the corpus", "refine {w}/outside -o {out} --steps 2 --quiet", "etc/passwd"),
    # train
    ("train/out is a file", "train score-supervised {w}/corpus -o {w}/afile --recipe tiny --quiet", "afile: is a file"),
    ("train/read-only out", f"train score-supervised {{w}}/corpus -o {RO} --recipe tiny --quiet", "cannot write"),
    ("train/unknown recipe key", "train score-supervised {w}/corpus -o {out} --recipe tiny --set nope=1 --quiet",
     "nope"),
    ("train/recipe file missing", "train self-refine {w}/corpus -o {out} --recipe {w}/nope.yaml --quiet", "nope.yaml"),
    ("train/no tracks", "train self-refine {w}/none -o {out} --recipe tiny --quiet", "holds no tracks"),
    ("train/no train split", "train score-supervised {w}/notrain -o {out} --recipe tiny --quiet", "no track in split train"),
    ("train/--accelerator gpu without one",
     "train majl {w}/corpus -o {out} --recipe tiny --accelerator gpu --quiet", "No supported gpu backend found"),
    ("train/--strategy unknown", "train majl {w}/corpus -o {out} --recipe tiny --strategy nope --quiet",
     "--strategy nope"),
    ("experiment/--devices beyond the CPU cores",
     "experiment majl --preset tiny --devices 4096 -o {out} --quiet", "--devices 4096 on cpu"),
    ("train/--checkpoint-every 0", "train self-refine {w}/corpus -o {out} --checkpoint-every 0", "--checkpoint-every"),
    ("train/weak-mic without a train split", "train weak-mic {w}/notrain -o {out} --recipe tiny --quiet",
     "no track in split train"),
    ("train/majl without a fully labelled track", "train majl {w}/alltrain -o {out} --recipe tiny --quiet",
     "no fully labelled training track"),
    ("train/self-refine separator kwarg unknown",
     "train self-refine {w}/corpus -o {out} --recipe tiny --set separator.model_kwargs.hiddn=3 --quiet", "'hiddn'"),
    ("train/majl module of the wrong role",
     "train majl {w}/corpus -o {out} --recipe tiny --set modules.U.name=crepe --quiet", "'crepe' is a pitch_estimator"),
    ("train/majl lr schedule key unknown",
     "train majl {w}/corpus -o {out} --recipe tiny --set train.lr_schedule.evry=3 --quiet", "'evry'"),
    ("train/two manifests for one-manifest method", "train self-refine {w}/corpus {w}/corpus -o {out} --quiet",
     "trains on one manifest"),
    ("train/--model for another method", "train self-refine {w}/corpus -o {out} --model att --quiet", "--model"),
    ("train/stem path outside the corpus", "train self-refine {w}/outside -o {out} --recipe tiny --quiet", "etc/passwd"),
    # experiment
    ("experiment/empty --bach10 folder", "experiment score-supervised --preset tiny --bach10 {w}/emptydir -o {out} --quiet",
     "emptydir"),
    ("experiment/out is a file", "experiment self-refine --preset tiny -o {w}/afile --quiet", "afile: is a file"),
    ("experiment/read-only out", f"experiment self-refine --preset tiny -o {RO} --quiet", "cannot write"),
    ("experiment/--num-nodes 0", "experiment self-refine --preset tiny -o {out} --num-nodes 0", "--num-nodes"),
    ("experiment/unknown preset", "experiment self-refine --preset nope -o {out} --quiet", "nope"),
    ("experiment/majl --mir1k without clips", "experiment majl --preset tiny --mir1k {w}/emptydir -o {out} --quiet",
     "emptydir"),
    ("experiment/score-supervised model kwarg unknown",
     "experiment score-supervised --preset tiny --set train.model.chanels=3 -o {out} --quiet", "'chanels'"),
    ("experiment/weak-mic lr schedule key unknown",
     "experiment weak-mic --preset tiny --set ratio.mt_schedule.upp=3 -o {out} --quiet", "'upp'"),
    ("experiment/majl no combination", "experiment majl --preset tiny --set combos=[] -o {out} --quiet",
     "combos is empty"),
    ("experiment/majl module kwarg unknown",
     "experiment majl --preset tiny --set modules.H.kwargs.chanels=[4,4,4] -o {out} --quiet", "'chanels'"),
    ("experiment/--mir1k for another method", "experiment self-refine --preset tiny --mir1k {w}/emptydir -o {out} --quiet",
     "--mir1k"),
    ("experiment/weak-mic --openmic missing", "experiment weak-mic --preset tiny --openmic {w}/nowhere -o {out} --quiet",
     "nowhere"),
]


def _argv(spec: str, w: Path, out: Path) -> list[str]:
    return spec.format(w=w, out=out).split()


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_is_one_line_exit_2_and_loses_nothing(row, world, capfd):
    name, spec, names = row
    if str(RO) in spec and _writable(RO):
        pytest.skip(f"{RO} is writable on this machine")
    if "--accelerator gpu" in spec and __import__("torch").cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = world / "out" / name.replace("/", "_").replace(" ", "_")
    before = _tree(world)
    code = main(_argv(spec, world, out))
    o, err = capfd.readouterr()
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2, f"exit {code}; stderr: {err[-1500:]}"
    assert "Traceback" not in err + o
    assert len(lines) == 1, f"expected one line, got: {lines}"
    assert names in lines[0], lines[0]
    assert lines[0].startswith("weakmir")
    assert _tree(world) == before, "the world's files changed"
    assert not out.exists()


def test_every_verb_has_rows():
    from weakmir.cli import build_parser

    verbs = set(build_parser()._subparsers._group_actions[0].choices)
    assert verbs == {r[0].split("/")[0] for r in ROWS}


@pytest.mark.parametrize("spec", ["separate {w}/sep.ckpt {w}/a/mix.flac -o {out} --chunk-seconds 0",
                                  "info {w}/mdir"])
def test_a_real_process_exits_2_with_one_line(spec, world, tmp_path):
    p = subprocess.run([sys.executable, "-m", "weakmir", *_argv(spec, world, tmp_path / "o")], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "o").exists()


def test_conversions_are_said_on_stderr(world, tmp_path, capfd):
    """Mono, 8 kHz and a WAV cut short are separated, each with its one-line notice."""
    out = tmp_path / "o"
    args = [str(world / "sep.ckpt"), *(str(world / f) for f in ("mono.wav", "low.wav", "short.wav"))]
    assert main(["separate", *args, "-o", str(out)]) == 0
    err = capfd.readouterr().err
    notes = [x for x in err.splitlines() if x.startswith("weakmir: note:")]
    assert any("mono.wav: 1 channel, duplicated to 2" in x for x in notes), notes
    assert any("low.wav: 8000 Hz, resampled to 44100 Hz" in x for x in notes), notes
    assert any("short.wav: truncated: its header promises 1.00 s, the file holds 0.50 s" in x for x in notes), notes
    for stem in ("mono", "low", "short"):
        assert sorted(p.name for p in (out / stem).iterdir()) == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    held = sf.info(world / "short.wav").frames
    assert 0.45 * 44100 < held < 0.55 * 44100 and sf.info(out / "short" / "vocals.wav").frames == held


def test_a_corrected_synth_runs_after_a_failed_one(world, tmp_path, capfd):
    """A corrupt SoundFont leaves no synth.json, so the corrected command is not refused."""
    out = tmp_path / "c"
    assert main(["synth", str(out), "--soundfont", str(world / "bad.sf2"), "--tracks", "1", "--quiet"]) == 2
    assert not out.exists()
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    # a late failure (FluidSynth cannot load a file with a SoundFont's header) in a folder the user made
    # leaves that folder as it was too
    late = tmp_path / "late.sf2"
    late.write_bytes(b"RIFF\x10\x00\x00\x00sfbk" + b"\x00" * 64)
    assert main(["synth", str(out), "--soundfont", str(late), "--tracks", "1", "--quiet"]) == 2
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    capfd.readouterr()
    assert main(["synth", str(out), "--soundfont", "TimGM6mb", "--tracks", "1", "--seconds", "1",
                 "--sample-rate", "16000", "--quiet"]) == 0
    assert (out / "manifest.json").is_file()


def test_refine_replaces_its_input_only_with_overwrite(world, tmp_path):
    """--overwrite lets refine CORPUS -o CORPUS through the check (the check alone: no training here)."""
    from weakmir.files import check_output_folder

    corpus = world / "corpus"
    check_output_folder(corpus, inputs=[corpus / "manifest.json"], writes=["manifest.json"], overwrite=True)
    with pytest.raises(Exception, match="would overwrite the input"):
        check_output_folder(corpus, inputs=[corpus / "manifest.json"], writes=["manifest.json"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stopping_separate_leaves_no_partial_file_and_says_it_starts_over(sig, tmp_path):
    """A long file is being separated when the signal comes: exit 130, one line that says separate does not
    resume, the output folder holds no temporary or partial file."""
    from weakmir.models import build
    from weakmir.train.checkpoint import save

    sr = 44100
    sf.write(tmp_path / "long.wav", _tone(120, sr, 2), sr, subtype="PCM_16")
    save(tmp_path / "sep.ckpt", build("mask"), {})
    out = tmp_path / "o"
    p = subprocess.Popen([sys.executable, "-m", "weakmir", "separate", str(tmp_path / "sep.ckpt"),
                          str(tmp_path / "long.wav"), "-o", str(out), "--chunk-seconds", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         # as from a terminal: a test run in the background inherits SIGINT ignored
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.time()
    while not list(out.rglob(".*")) and p.poll() is None and time.time() - t0 < 120:
        time.sleep(0.02)
    assert p.poll() is None, "separate finished before it could be stopped"
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0] and "does not resume" in lines[0], lines
    assert "Traceback" not in err
    assert [f for f in out.rglob("*") if f.is_file()] == []
