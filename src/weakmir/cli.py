"""Command line: ``weakmir VERB ...`` — thin: parse, check the inputs, call one function, print.

Errors a user can cause (bad file, label, option) print one line
``weakmir: error: ...`` naming the thing and the fix, and exit with status 2;
every verb checks its inputs and its output folder (:mod:`weakmir.inputs`)
before any work. Conversions of the user's audio are said as
``weakmir: note: ...`` on stderr. Ctrl-C or SIGTERM stops a verb with exit
status 130, no partial file, and a line saying whether a re-run resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from . import __version__
from .errors import WeakmirError, interrupt


class _UsageError(Exception):
    """argparse's complaint about the command line, printed as one line."""


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (no usage block): ``weakmir VERB: ...; see --help``."""

    def error(self, message):
        raise _UsageError(f"{self.prog}: {message}; see '{self.prog} --help'")


def _num(kind, option: str, low=None, high=None, low_open: bool = False, high_open: bool = False):
    """An argparse type: ``kind`` (int or float) within the range (:func:`weakmir.inputs.number`)."""

    def parse(s: str):
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not {'an integer' if kind is int else 'a number'}") from None
        from .inputs import number

        return number(v, option, low, high, low_open, high_open)

    parse.__name__ = kind.__name__
    return parse


def _device(s: str) -> str:
    """An argparse type: a torch device this machine has (:func:`weakmir.inputs.device`)."""
    from .inputs import device

    return device(s)


def _rate(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{v} is outside [0, 1]")
    return v


def _splits(s: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in s.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r}: give three numbers like 0.8,0.1,0.1") from None
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{s!r}: give three numbers like 0.8,0.1,0.1")
    return parts


def _add_synth(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="build the embedded multitrack corpus (no download)",
        description=(
            "Render a multitrack corpus from real Bach chorales (music21 corpus) or procedural pop songs "
            "with FluidSynth and a General MIDI SoundFont. Every stem comes with its score notes, f0 "
            "(monophonic parts) and true labels; label noise like MDX23's and missing tags like OpenMIC's "
            "are added on request. Writes OUT/manifest.json. Re-running with the same options resumes."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("out", type=Path, help="output folder (created; a finished run in it is resumed)")
    p.add_argument("--preset", choices=["chorale", "pop", "slakh", "openmic"], default="chorale",
                   help="chorale: four-part Bach chorales; pop: drums/bass/chords/vocals songs; slakh: piano, "
                        "distorted guitar and bass songs (the score-supervised paper's instrument set); openmic: "
                        "10-s clips over the 20 OpenMIC classes with OpenMIC-sparse tags (the weak-mic thesis)")
    p.add_argument("--tracks", type=_num(int, "--tracks", 1), default=20, help="number of tracks")
    p.add_argument("--seconds", type=_num(float, "--seconds", 0, low_open=True), default=None,
                   help="length of each track (at most), seconds (default 20; openmic: 10)")
    p.add_argument("--sample-rate", type=_num(int, "--sample-rate", 8000, 192000), default=44100,
                   help="sample rate of the audio, Hz (8000 to 192000)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed and options give the same corpus")
    p.add_argument("--noise", type=_rate, default=0.0,
                   help="total label-noise rate, spread evenly over bleed / wrong label / merge")
    p.add_argument("--bleed", type=_rate, default=None, help="rate of stems with another source bled in at -20..-6 dB")
    p.add_argument("--wrong-label", type=_rate, default=None, help="rate of stems given another stem's label")
    p.add_argument("--merge", type=_rate, default=None, help="rate of stems merged with another source under one label")
    p.add_argument("--missing", type=_rate, default=0.0, help="rate of clip tags (OpenMIC classes) left unknown")
    p.add_argument("--programs", choices=["bach10", "random"], default="bach10",
                   help="chorale instruments: Bach10's (violin, clarinet, saxophone, bassoon) or random per track")
    p.add_argument("--rests", type=_rate, default=0.0,
                   help="chorale: chance that a voice rests through each stretch of 8 quarter notes (default 0: "
                        "whole chorales; the score-supervised experiment uses 0.3)")
    p.add_argument("--timbre", type=_num(float, "--timbre", 0, 12), default=0.0,
                   help="each part's spectral tilt is drawn from +-TIMBRE dB per octave above 500 Hz, so one "
                        "SoundFont patch sounds like many instruments (default 0: as rendered; 0 to 12)")
    p.add_argument("--timbre-center", type=_num(float, "--timbre-center", -12, 12), default=0.0,
                   help="the centre of that range, dB per octave: -3 with --timbre 11 draws from -14 to +8, for "
                        "patches brighter than the instruments they stand for (default 0; -12 to 12)")
    p.add_argument("--room", type=_rate, default=0.0,
                   help="the parts of each track share one reverberant room (pedalboard Reverb) whose wet level is "
                        "drawn from [0, ROOM] (default 0: dry)")
    p.add_argument("--splits", type=_splits, default=(0.8, 0.1, 0.1), help="train,valid,test fractions (by track)")
    p.add_argument("--soundfont", action="append", default=None, metavar="SF2",
                   help="General MIDI .sf2 file, or TimGM6mb (the one inside pretty_midi); give it again to add "
                        "SoundFonts, and each part plays one drawn at random (default: $WEAKMIR_SOUNDFONT or "
                        "Debian's FluidR3_GM.sf2)")
    p.add_argument("--jobs", type=_num(int, "--jobs", 0), default=0, help="worker processes (0: one per core)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_synth, interrupted="the tracks finished so far are kept: re-run the same command to "
                                                "resume")


def _cmd_synth(a) -> int:
    from .data.synth.build import SynthConfig, build_corpus

    third = a.noise / 3.0
    config = SynthConfig(
        preset=a.preset, tracks=a.tracks, seconds=a.seconds or (10.0 if a.preset == "openmic" else 20.0),
        sample_rate=a.sample_rate, seed=a.seed,
        bleed=third if a.bleed is None else a.bleed,
        wrong_label=third if a.wrong_label is None else a.wrong_label,
        merge=third if a.merge is None else a.merge,
        missing=a.missing, programs=a.programs, rests=a.rests, timbre=a.timbre, timbre_center=a.timbre_center,
        room=a.room,
        splits=a.splits,
        soundfont=a.soundfont[0] if a.soundfont else "", soundfonts=tuple(a.soundfont[1:] if a.soundfont else ()),
        jobs=a.jobs,
    )
    manifest, stats = build_corpus(a.out, config, progress=not a.quiet)
    s = manifest.summary()
    noise = ", ".join(f"{k} {v}" for k, v in s["label_noise"].items())
    speed = f"{stats['x_realtime']:.0f}x real time" if stats["x_realtime"] else "nothing new to render"
    missing = f"{s['missing_tag_rate']:.0%}" if s["missing_tag_rate"] is not None else "n/a"
    print(f"weakmir synth: {s['tracks']} {a.preset} tracks, {s['hours'] * 60:.1f} min, {s['stems']} stems "
          f"-> {a.out / 'manifest.json'} | label noise: {noise} | missing tags {missing} | "
          f"{stats['rendered_tracks']} rendered, {stats['skipped_tracks']} reused in {stats['seconds']:.1f} s ({speed})")
    return 0


def _add_info(sub) -> None:
    p = sub.add_parser(
        "info", help="summarise one or more manifests",
        description="Validate manifests and print what they hold: tracks per split, hours, stems per label, "
                    "label noise by kind, missing-tag rate.",
    )
    p.add_argument("manifests", type=Path, nargs="+", help="manifest.json files or folders holding one")
    p.add_argument("--json", action="store_true", help="print one JSON object per manifest")
    p.set_defaults(func=_cmd_info, interrupted="nothing was written")


def _cmd_info(a) -> int:
    from .data.manifest import Manifest

    for path in a.manifests:
        s = Manifest.read(path).summary()
        if a.json:
            print(json.dumps({"manifest": str(path), **s}))
            continue
        print(f"{path}: {s['name']}")
        print(f"  tracks        {s['tracks']}  ({', '.join(f'{k} {v}' for k, v in sorted(s['splits'].items()))})")
        print(f"  audio         {s['hours']:.3f} h  ({s['hours'] * 60:.1f} min)")
        print(f"  stems         {s['stems']}  observed labels: {', '.join(f'{k} {v}' for k, v in sorted(s['stems_by_label'].items()))}")
        print(f"  label noise   {', '.join(f'{k} {v}' for k, v in s['label_noise'].items())}  (rate {s['label_noise_rate']:.1%} of stems)")
        mt = s["missing_tag_rate"]
        print(f"  missing tags  {'n/a' if mt is None else f'{mt:.1%}'} of clip x class entries unknown")
        print(f"  annotations   {s['with_score']} tracks with a score, {s['stems_with_f0']} stems with f0")
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="score estimates against a manifest (separation, pitch, transcription, tagging)",
        description=(
            "Score estimates against the references in a manifest and write DIR/metrics.json and "
            "DIR/metrics.md. ESTS is a folder (separation: ESTS/<track>/<label>.wav; pitch: "
            "ESTS/<track>/<stem>.csv f0; transcription: ESTS/<track>/<stem>.csv notes or .mid), a JSON "
            "file of tag scores (tagging), or a baseline: 'oracle' (the references: the metric's bound) or "
            "'mixture' (separation: the input mixture as every estimate). Separation uses museval's BSS "
            "Eval v4 convention (1 s windows, median over frames, median over tracks)."
        ),
    )
    p.add_argument("refs", type=Path, help="reference manifest.json (or its folder)")
    p.add_argument("ests", help="estimates folder / tags JSON, or 'oracle' / 'mixture'")
    p.add_argument("--task", choices=["separation", "pitch", "transcription", "tagging"], required=True)
    p.add_argument("--out", "-o", type=Path, required=True, help="output folder for metrics.json and metrics.md")
    p.add_argument("--split", choices=["train", "valid", "test"], default=None, help="only tracks of this split")
    p.add_argument("--pad", action="store_true", help="pad/trim estimates of another length (museval's padding)")
    p.add_argument("--by", choices=["label", "stem"], default="label",
                   help="separation references: one per stem label (vocals/bass/drums/other) or one per stem")
    p.add_argument("--overwrite", action="store_true",
                   help="allow metrics.json / metrics.md to replace an input file of the same name")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evaluate, interrupted="nothing was written (the metrics are written at the end): "
                                                   "re-running starts over")


def _cmd_evaluate(a) -> int:
    from .evaluate import evaluate

    res = evaluate(a.task, a.refs, a.ests, a.out, split=a.split, pad=a.pad, progress=not a.quiet, by=a.by,
                   overwrite=a.overwrite)
    agg = res["aggregate"]
    if a.task == "separation":
        avg = agg.get("avg", {})
        summary = ", ".join(f"{k} {v:.2f}" for k, v in avg.items() if isinstance(v, float))
        print(f"weakmir evaluate: separation, {len(res['tracks'])} tracks, average {summary} -> {a.out / 'metrics.json'}")
    elif a.task == "tagging":
        o = agg["overall"]
        print(f"weakmir evaluate: tagging, {len(res['tracks'])} tracks, f1_macro {o['f1_macro']:.3f}, "
              f"auroc {o['auroc']:.3f} -> {a.out / 'metrics.json'}")
    else:
        mean = agg.get("mean", {})
        keys = ("raw_pitch_accuracy", "overall_accuracy") if a.task == "pitch" else ("f_measure_no_offset", "note_accuracy")
        print(f"weakmir evaluate: {a.task}, {agg.get('stems', 0)} stems, "
              + ", ".join(f"{k} {mean[k]:.3f}" for k in keys if k in mean) + f" -> {a.out / 'metrics.json'}")
    return 0


def _add_dataset(sub) -> None:
    p = sub.add_parser(
        "dataset", help="turn a real dataset in its published layout into a manifest",
        description="Read a dataset you already have (nothing is downloaded) and write OUT/manifest.json "
                    "pointing at its audio, with annotations converted to weakmir's CSVs.",
    )
    p.add_argument("name", choices=["bach10", "musdb", "musdb-hq", "mdx23", "slakh", "openmic", "mir1k", "medleydb",
                                    "mir-st500"],
                   help="dataset layout: bach10; musdb (MUSDB18 .stem.mp4, decoded once to FLAC in OUT); "
                        "musdb-hq (MUSDB18-HQ wav folders); mdx23 (MDX23 label-noise set, HQ layout, noisy labels); "
                        "slakh (Slakh2100 flac, per-stem MIDI and metadata.yaml); openmic (OpenMIC-2018: VGGish "
                        "features, aggregated labels, split01 partitions, audio if present); mir1k (MIR-1K: Wavfile/ "
                        "stereo clips split into voice and accompaniment, PitchLabel/ .pv f0; split by song); medleydb "
                        "(MedleyDB Audio/ + Pitch_Annotations, or the MedleyDB-Pitch layout: singing-voice stems and "
                        "their f0); mir-st500 (MIR-ST500 note JSON + train|test/<id>/Mixture.mp3: mixtures with pitch "
                        "only)")
    p.add_argument("root", type=Path, help="the dataset's root folder")
    p.add_argument("--out", "-o", type=Path, required=True, help="output folder for manifest.json")
    p.add_argument("--notes", choices=["gtnotes", "score"], default="gtnotes",
                   help="bach10 only: stems' notes from the performed ground truth (GTNotes, for evaluation) or "
                        "the score aligned to the audio by NN-Name.txt (for score-supervised training)")
    p.add_argument("--keep", default=None,
                   help="slakh only: comma-separated instruments to keep, mixed anew (the score-supervised paper: "
                        "piano,distorted_guitar,bass)")
    p.add_argument("--splits-file", type=Path, default=None,
                   help="slakh only: JSON {\"train\": [ids], \"validation\": [ids], \"test\": [ids]} "
                        "(e.g. Slakh2100-split2); default: the folder each track is in")
    p.set_defaults(func=_cmd_dataset, interrupted="no manifest was written: re-running starts over (musdb keeps "
                                                  "the tracks it already decoded)")


def _cmd_dataset(a) -> int:
    from .data.sources import bach10, medleydb, mir1k, mir_st500, musdb, openmic, slakh

    if a.notes != "gtnotes" and a.name != "bach10":
        raise WeakmirError(f"--notes {a.notes} applies to bach10 only; drop it for {a.name}")
    if (a.keep or a.splits_file) and a.name != "slakh":
        raise WeakmirError(f"--keep / --splits-file apply to slakh only; drop them for {a.name}")
    from .inputs import output_folder

    output_folder(a.out, inputs=[a.root], option="--out")  # each loader checks its root's layout
    loaders = {"bach10": lambda root, out: bach10.load(root, out, notes=a.notes), "musdb": musdb.load_stems, "musdb-hq": musdb.load_hq,
               "mdx23": lambda root, out: musdb.load_hq(root, out, noisy=True),
               "slakh": lambda root, out: slakh.load(root, out, keep=a.keep.split(",") if a.keep else None,
                                                     splits_file=a.splits_file),
               "openmic": openmic.load, "mir1k": mir1k.load, "medleydb": medleydb.load, "mir-st500": mir_st500.load}
    m = loaders[a.name](a.root, a.out)
    s = m.summary()
    print(f"weakmir dataset: {a.name}, {s['tracks']} tracks, {s['hours'] * 60:.1f} min, {s['stems']} stems "
          f"-> {a.out / 'manifest.json'}")
    return 0


def _add_separate(sub) -> None:
    p = sub.add_parser(
        "separate", help="separate audio files with a trained separator checkpoint",
        description="Separate audio files of any length in bounded memory: chunks with context and "
                    "cross-faded overlap-add. Writes OUT/<file name>/<source>.wav. CHECKPOINT is a "
                    "separator checkpoint (self-refine, score-supervised), a MAJL voice separator or "
                    "majl_jcf checkpoint (RUN/checkpoints/pipeline_mss.ckpt, majl.ckpt, ...: vocals.wav and "
                    "accompaniment.wav = the mixture minus the voice, 16 kHz mono), or a model name (e.g. "
                    "'mask') for an untrained model (smoke tests).",
    )
    _inference_args(p, "checkpoint file or model name", "audio files (wav/flac/ogg/mp3)")
    p.add_argument("--chunk-seconds", type=_num(float, "--chunk-seconds", 0, low_open=True), default=10.0,
                   help="chunk length (> 0, longer than the overlap)")
    p.add_argument("--overlap-seconds", type=_num(float, "--overlap-seconds", 0), default=1.0,
                   help="cross-faded overlap between chunks (>= 0)")
    p.add_argument("--context-seconds", type=_num(float, "--context-seconds", 0), default=None,
                   help="extra audio read around each chunk (default: the model's receptive field, at least 0.5 s)")
    p.add_argument("--normalize-lufs", type=_num(float, "--normalize-lufs", -70, 0), default=None,
                   help="scale the input to this loudness first and the outputs back (default: the checkpoint's "
                        "training loudness when it has one, e.g. -14 for self-refine separators)")
    p.add_argument("--device", type=_device, default="cpu", help="torch device (cpu, cuda, cuda:N, mps)")
    p.set_defaults(func=_cmd_separate, interrupted="no partial file was left, the files finished before are kept; "
                                                   "separate does not resume: re-running separates every file again")


def _inference_args(p, checkpoint_help: str, audio_help: str) -> None:
    """The arguments every inference verb takes: CHECKPOINT AUDIO... -o OUT [--overwrite]."""
    p.add_argument("checkpoint", type=Path, help=checkpoint_help)
    p.add_argument("audio", type=Path, nargs="+", help=audio_help)
    p.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="allow an output to replace an input file of the same path")


def _output_name(path: Path) -> str:
    """The folder of OUT a file's outputs go to: its name without the extension (or ``.stem.mp4``)."""
    return path.name[:-len(".stem.mp4")] if path.name.endswith(".stem.mp4") else path.stem


def _inference_inputs(a, role, files, channels, wrap=None):
    """separate / transcribe / pitch, before any work: distinct output names, a checkpoint of ``role`` (or of
    one of a tuple of roles; ``wrap(model)`` is what runs), an output folder where none of ``files(model)``
    (names in each OUT/<name>/) replaces an input, and every audio file (``channels(model)``: the channels
    it is converted to). Returns ``({name: audio path}, model, meta)``."""
    from . import inputs

    names = inputs.output_names(a.audio, _output_name)
    model, meta = inputs.checkpoint(a.checkpoint, role, f"weakmir {a.verb}")
    model = wrap(model) if wrap else model
    inputs.output_folder(a.out, inputs=[*a.audio, Path(a.checkpoint)], overwrite=a.overwrite,
                         writes=[f"{n}/{f}" for n in names for f in files(model)])
    inputs.audio_files(a.audio, sample_rate=model.sample_rate, channels=channels(model))
    return names, model, meta


def _cmd_separate(a) -> int:
    from tqdm import tqdm

    from .infer.separate import ROLES, as_separator, separate_file

    if a.overlap_seconds >= a.chunk_seconds:
        raise WeakmirError(f"--overlap-seconds {a.overlap_seconds} is not shorter than --chunk-seconds "
                           f"{a.chunk_seconds}; give a longer chunk or a shorter overlap")
    names, model, meta = _inference_inputs(a, ROLES, lambda m: [f"{s}.wav" for s in m.sources],
                                           lambda m: m.audio_channels, wrap=as_separator)
    model.to(a.device)
    lufs = a.normalize_lufs if a.normalize_lufs is not None else meta.get("config", {}).get("normalize_lufs")
    for name, path in tqdm(names.items(), desc="separate", unit="file", disable=len(a.audio) < 2, leave=False):
        dest = a.out / name
        files = separate_file(model, path, dest, a.chunk_seconds, a.overlap_seconds, a.context_seconds, a.device,
                              normalize_lufs=lufs)
        print(f"weakmir separate: {path} -> {dest}/ ({', '.join(files)})")
    return 0


def _add_pitch(sub) -> None:
    p = sub.add_parser(
        "pitch", help="singing-voice f0 (and the separated voice) with a MAJL checkpoint, or torchcrepe",
        description="Estimate the singing voice's f0 of each file, any length, in chunks: OUT/<file name>/f0.csv "
                    "(time_s, f0_hz with 0 = unvoiced, confidence; one row per 20-ms frame), vocals.wav (the "
                    "separated voice, 16 kHz mono) and f0.png (the f0 over the mixture's spectrogram). CHECKPOINT "
                    "is a majl_jcf checkpoint (weakmir train majl / experiment majl: e.g. RUN/checkpoints/majl.ckpt), "
                    "a MAJL PE module on its own (RUN/checkpoints/pipeline_pe.ckpt: no separation, the file is "
                    "tracked as a clean voice, as that module was trained; no vocals.wav), or 'crepe' for "
                    "torchcrepe's pretrained tracker with no training (no separation: the mixture is tracked as "
                    "it is).",
    )
    _inference_args(p, "a majl_jcf or pitch_estimator checkpoint, or 'crepe'",
                    "audio files (any rate and channel count; mixed to mono 16 kHz)")
    p.add_argument("--chunk-seconds", type=_num(float, "--chunk-seconds", 1), default=10.0,
                   help="chunk length in seconds (>= 1; rounded down to the separator's frame grid, and at least one "
                        "second of context is added on each side)")
    p.add_argument("--threshold", type=_num(float, "--threshold", 0, 1, True, True), default=0.5,
                   help="voicing threshold on the pitch vector's maximum (crepe: on its periodicity), in (0, 1)")
    p.add_argument("--crepe-model", choices=["tiny", "full"], default="tiny",
                   help="with CHECKPOINT crepe: torchcrepe's model (full is ~50x slower on a CPU)")
    p.add_argument("--device", type=_device, default="cpu", help="torch device (cpu, cuda, cuda:N, mps)")
    p.set_defaults(func=_cmd_pitch, interrupted="no partial file was left, the files finished before are kept; pitch "
                                                "does not resume: re-running estimates every file again")


def _cmd_pitch(a) -> int:
    from . import inputs
    from .infer.pitch import ROLES, SAMPLE_RATE, outputs, pitch_file

    if str(a.checkpoint) == "crepe" and not a.checkpoint.exists():
        from .audio.crepe import import_torchcrepe

        import_torchcrepe()
        names, model = inputs.output_names(a.audio, _output_name), "crepe"
        inputs.output_folder(a.out, inputs=list(a.audio), overwrite=a.overwrite,
                             writes=[f"{n}/{f}" for n in names for f in outputs(model)])
        inputs.audio_files(a.audio, sample_rate=SAMPLE_RATE, channels=1)
    else:
        names, model, _ = _inference_inputs(a, ROLES, outputs, lambda m: 1)
    for name, path in names.items():
        r = pitch_file(model, path, a.out / name, a.chunk_seconds, a.threshold, a.crepe_model, a.device)
        print(f"weakmir pitch: {path} -> {a.out / name}/ ({', '.join(r['files'])}; {r['frames']} frames, "
              f"{100 * r['voiced']:.0f} % voiced)")
    return 0


def _add_transcribe(sub) -> None:
    p = sub.add_parser(
        "transcribe", help="transcribe audio with a trained transcriptor checkpoint",
        description="Transcribe each file with a score-supervised transcriptor (tcn_transcriptor checkpoint): "
                    "OUT/<file name>/<instrument>.mid per instrument and pianoroll.png (instruments stacked, "
                    "high notes up).",
    )
    _inference_args(p, "a tcn_transcriptor checkpoint (e.g. transcriptor_3.ckpt)",
                    "audio files (any rate and channel count; mixed to mono)")
    p.add_argument("--threshold", type=_num(float, "--threshold", 0, 1, True, True), default=0.5,
                   help="note probability threshold, in (0, 1)")
    p.add_argument("--min-frames", type=_num(int, "--min-frames", 1), default=2, help="shortest note, in frames")
    p.add_argument("--device", type=_device, default="cpu", help="torch device (cpu, cuda, cuda:N, mps)")
    p.set_defaults(func=_cmd_transcribe, interrupted="no partial file was left, the files finished before are kept; "
                                                     "transcribe does not resume: re-running transcribes every file "
                                                     "again")


def _cmd_transcribe(a) -> int:
    from .infer.transcribe import transcribe_file

    names, model, _ = _inference_inputs(a, "transcriptor", lambda m: [*(f"{i}.mid" for i in m.instruments),
                                                                      "pianoroll.png"], lambda m: 1)
    model.to(a.device)
    for name, path in names.items():
        dest = a.out / name
        notes = transcribe_file(model, path, dest, a.threshold, a.min_frames, a.device)
        counts = ", ".join(f"{k} {len(v)}" for k, v in notes.items())
        print(f"weakmir transcribe: {path} -> {dest}/ (notes: {counts})")
    return 0


def _add_tag(sub) -> None:
    p = sub.add_parser(
        "tag", help="tag audio (or feature files) with a trained weak-mic tagger checkpoint",
        description="Tag each file with a weak-mic tagger (weakmir train weak-mic / experiment weak-mic): "
                    "OUT/<file name>/tags.json and tags.csv (clip probability per class; the clip's probability is "
                    "the maximum over its 9.6-s windows), windows.csv (per window and class, for long files) and "
                    "attention.png (where each instrument plays: the attention weights over the 0.96-s instances, "
                    "for attention taggers); OUT/tags.csv holds one row per file x class.",
    )
    _inference_args(p, "a weak_mic_tagger checkpoint (e.g. RUN/checkpoints/att.ckpt)",
                    "audio files (any rate and channel count; mixed to mono 16 kHz), or .npy / OpenMIC vggish .json "
                    "feature files for taggers trained on provided features")
    p.add_argument("--threshold", type=_num(float, "--threshold", 0, 1, True, True), default=0.5,
                   help="probability from which a class is tagged present, in (0, 1)")
    p.set_defaults(func=_cmd_tag, interrupted="no partial file was left, the files finished before are kept; tag does "
                                              "not resume: re-running tags every file again")


def _tag_inputs(a, role: str, files):
    """tag / features, before any work: distinct output names, a checkpoint of ``role``, the output folder,
    and every input (audio files checked, feature files read)."""
    from . import inputs
    from .data.features import SUFFIXES, read_features

    names = inputs.output_names(a.audio, _output_name)
    model, meta = inputs.checkpoint(a.checkpoint, role, f"weakmir {a.verb}")
    inputs.output_folder(a.out, inputs=[*a.audio, Path(a.checkpoint)], overwrite=a.overwrite, writes=files(names))
    for p in a.audio:
        if p.suffix in SUFFIXES:
            read_features(p)
        else:
            inputs.audio_files([p])
    return names, model


def _cmd_tag(a) -> int:
    from .infer.tag import OUTPUTS, tag_file, write_table

    names, model = _tag_inputs(a, "tagger", lambda names: ["tags.csv", *(f"{n}/{f}" for n in names for f in OUTPUTS)])
    records = []
    for name, path in names.items():
        r = tag_file(model, path, a.out / name, a.threshold)
        records.append(r)
        print(f"weakmir tag: {path} -> {a.out / name}/ (tags: {', '.join(r['tags']) or 'none'})")
    write_table(a.out / "tags.csv", records)
    return 0


def _add_features(sub) -> None:
    p = sub.add_parser(
        "features", help="instance features of audio files with a frozen embedding checkpoint",
        description="Compute the instance features weak-mic taggers read (one 128-d vector per 0.96 s of mono "
                    "16 kHz audio, as OpenMIC's VGGish) with an embedding checkpoint (OUT/checkpoints/embedding.ckpt "
                    "of weakmir experiment weak-mic or train weak-mic): OUT/<file name>.npy, (instances, 128).",
    )
    _inference_args(p, "a mel_embedding checkpoint (e.g. RUN/checkpoints/embedding.ckpt)",
                    "audio files (any rate and channel count)")
    p.set_defaults(func=_cmd_features, interrupted="the files finished before are kept; features does not resume: "
                                                   "re-running computes every file again")


def _cmd_features(a) -> int:
    from .infer.tag import features_file

    names, model = _tag_inputs(a, "embedding", lambda names: [f"{n}.npy" for n in names])
    a.out.mkdir(parents=True, exist_ok=True)
    for name, path in names.items():
        f = features_file(model, path, a.out / f"{name}.npy")
        print(f"weakmir features: {path} -> {a.out / (name + '.npy')} {tuple(f.shape)}")
    return 0


def _add_refine(sub) -> None:
    p = sub.add_parser(
        "refine", help="self-refine noisy stem labels (Koo et al. 2023)",
        description="Train the instrument classifier on random mixtures of the manifest's stems with their "
                    "(noisy) labels, relabel every stem by windowed inference, retrain on the stems now "
                    "inferred single-labelled, and repeat (--iterations). Writes OUT/manifest.json with each "
                    "stem's probabilities, new labels and the rule that decided them, OUT/report.md "
                    "(suspected mislabels, most confident first), OUT/psi_N.ckpt and OUT/refine.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("manifest", type=Path, help="manifest with noisy stem labels")
    p.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    p.add_argument("--iterations", type=_num(int, "--iterations", 1), default=2,
                   help="self-refining rounds (the paper refines twice)")
    p.add_argument("--steps", type=_num(int, "--steps", 1), default=300, help="classifier training steps per round")
    p.add_argument("--batch-size", type=_num(int, "--batch-size", 1), default=8)
    p.add_argument("--preset", choices=["small", "tiny"], default="small", help="ConvNeXt size (tiny = paper, 27.8 M)")
    p.add_argument("--threshold", type=_num(float, "--threshold", 0, 1, low_open=True), default=0.9,
                   help="probability for a label to be kept, in (0, 1]")
    p.add_argument("--loss", choices=["bce", "mae"], default="bce",
                   help="classifier loss: binary cross-entropy (default; trains in a CPU budget) or the paper's "
                        "mean absolute error")
    p.add_argument("--no-effects", action="store_true", help="random mixing without the effects chain")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true",
                   help="allow OUT/manifest.json to replace the input manifest (refine CORPUS -o CORPUS)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_refine, interrupted="no partial file was left; refine does not resume: re-running "
                                                 "trains from the start")


def _cmd_refine(a) -> int:
    from .experiments.self_refine import refine_and_report
    from .methods.self_refine import RefineConfig

    cfg = RefineConfig(preset=a.preset, steps=a.steps, batch_size=a.batch_size, threshold=a.threshold,
                       iterations=a.iterations, effects=not a.no_effects, seed=a.seed, loss=a.loss)
    res = refine_and_report(a.manifest, a.out, cfg, progress=not a.quiet, overwrite=a.overwrite)
    s = res.stats
    print(f"weakmir refine: {s['changed']} of {s['stems']} stems relabelled, {s['multi_labelled']} multi-labelled; "
          f"suspected-mislabel precision {s['mislabel_precision']:.3f}, recall {s['mislabel_recall']:.3f} "
          f"-> {a.out / 'manifest.json'}, {a.out / 'report.md'}")
    return 0


def _add_engine(p) -> None:
    """Recipe and engine options shared by ``train`` and ``experiment``."""
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override one recipe value, e.g. --set train.steps=[200,100,50] or --set separator.lr=1e-3 "
                        "(the value is read as YAML; give --set again for more)")
    g = p.add_argument_group("engine (PyTorch Lightning)")
    g.add_argument("--accelerator", default="cpu", help="cpu, gpu, auto, ... (Lightning's)")
    g.add_argument("--devices", default="1",
                   help="devices per node: a count, 'auto', or a list like 0,1 (Lightning's); with more than one "
                        "give --strategy ddp")
    g.add_argument("--strategy", default="auto", help="auto, ddp, ... (Lightning's)")
    g.add_argument("--num-nodes", type=_num(int, "--num-nodes", 1), default=1, help="machines (Lightning's; on Slurm, its launcher reads "
                                                           "the job's environment)")
    g.add_argument("--checkpoint-every", type=_num(int, "--checkpoint-every", 1), default=100, metavar="STEPS",
                   help="save a resume checkpoint every STEPS optimiser steps (and at the end of each stage)")


def _engine(a):
    from .experiments.stages import Engine

    devices = a.devices
    if isinstance(devices, str):
        if devices.isdigit():
            devices = int(devices)
        elif "," in devices:
            devices = [int(x) for x in devices.split(",") if x.strip()]
    from .train.engine import check_engine

    check_engine(a.accelerator, devices, a.strategy, a.num_nodes)
    return Engine(accelerator=a.accelerator, devices=devices, strategy=a.strategy, num_nodes=a.num_nodes,
                  checkpoint_every=a.checkpoint_every, progress=not a.quiet)


_RESUMES = ("the stages finished are kept and the one running resumes from its last checkpoint (saved every "
            "--checkpoint-every steps): re-run the same command to resume")


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="train a method on your own manifest (self-refine, score-supervised, weak-mic, majl)",
        description="Run a method's training stages on a manifest you made: self-refine trains a separator on the "
                    "stems' labels (a manifest from weakmir refine: the refined ones) with the multi-label grouping "
                    "and -14 LUFS inputs of its section 3.2; score-supervised trains the transcriptor (step 1), a "
                    "separator against it (step 2), both jointly (step 3) and the supervised bound, from mixtures "
                    "and the stems' notes; weak-mic trains one instrument tagger (--model) on the clips' observed tags (missing tags are masked, never negatives), from the manifest's features or from the audio through a frozen embedding network (pretrained on a synth corpus of its own unless the recipe's embedding.checkpoint names one); majl trains the pipeline, naive joint learning, MAJL-Stage I and (when some tracks are labelled with stems only or pitch only) MAJL Stage II on one or more manifests, each track's labelling (full, stems, pitch) read from the manifest. The manifest is checked first. Writes RUN/checkpoints/*.ckpt (for weakmir "
                    "separate / transcribe), RUN/metrics.csv, RUN/results.json (scores on the test split, else "
                    "valid), RUN/report.md and RUN/report.html. The same command again loads what is trained "
                    "and resumes a stage that was killed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("method", choices=["self-refine", "score-supervised", "weak-mic", "majl"])
    p.add_argument("manifest", type=Path, nargs="+",
                   help="manifest.json (or its folder); majl takes several (e.g. a fully labelled one, a stems-only "
                        "one and a pitch-only one)")
    p.add_argument("--model", choices=["att", "fc", "fc_t", "rnn", "rf", "mt", "dgm"], default=None,
                   help="weak-mic only: the tagger (thesis: att = attention MIL, fc_t = mean pooling, fc = flat, "
                        "rnn = bi-GRU, rf = random forests, mt = mean teacher, dgm = semi-supervised VAE; default att)")
    p.add_argument("--settings", choices=["synth", "mir1k"], default=None,
                   help="majl only: which of the recipe's settings train the rows: synth (its top-level combos[0], "
                        "train and stage2, chosen on the synth corpus; the default) or mir1k (its mir1k section: "
                        "combo, modules, train, stage2, th and shifts, chosen on MIR-1K's held-out training clips; for "
                        "real singing: the quick recipe adds a copy of every fully labelled training track 7 "
                        "semitones lower)")
    p.add_argument("--out", "-o", type=Path, required=True, help="run folder (a finished or killed run in it resumes)")
    p.add_argument("--recipe", default="quick",
                   help="a packaged recipe (tiny, quick, paper: recipes/METHOD/NAME.yaml) or a YAML file")
    _add_engine(p)
    p.add_argument("--overwrite", action="store_true",
                   help="allow the run's files (results.json, report.md, ...) to replace an input of the same path")
    p.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    p.set_defaults(func=_cmd_train, interrupted=_RESUMES)


def _cmd_train(a) -> int:
    from .experiments.train import train

    if a.model and a.method != "weak-mic":
        raise WeakmirError(f"--model applies to weak-mic only; drop it for {a.method}")
    if a.settings and a.method != "majl":
        raise WeakmirError(f"--settings applies to majl only; drop it for {a.method}")
    if len(a.manifest) > 1 and a.method != "majl":
        raise WeakmirError(f"{a.method} trains on one manifest, {len(a.manifest)} were given; merge them or pass one")
    r = train(a.method, a.manifest if a.method == "majl" else a.manifest[0], a.out, a.recipe, a.sets, _engine(a), progress=not a.quiet, overwrite=a.overwrite,
              model=a.model or "att", settings=a.settings or "synth")
    if r is None:  # a rank other than 0 of a distributed run
        return 0
    s = r["summary"]
    if a.method == "majl":
        rows = s.get("scores") or {}
        score = ("nothing to score" if not rows else f"on split {s['eval_split']}: " + " / ".join(
            f"{k} SDR {v['sdr']:.2f} dB RPA {v['rpa']:.1f} %" for k, v in rows.items()))
        print(f"weakmir train majl: {score} -> {a.out / 'checkpoints'}, {a.out / 'results.json'}")
        return 0
    if a.method == "weak-mic":
        score = ("nothing to score" if s.get("f1") is None else
                 f"F1 {s['f1']:.2f} %, AUROC {s['auroc']:.2f} % on split {s['eval_split']} ({s['scored_against']})")
        print(f"weakmir train weak-mic ({s['model']}): {score} -> {a.out / 'checkpoints' / (s['model'] + '.ckpt')}, "
              f"{a.out / 'results.json'}")
        return 0
    if a.method == "self-refine":
        score = "nothing to score" if s["sdr_avg"] is None else f"SDR avg {s['sdr_avg']:.2f} dB on split {s['eval_split']}"
    else:
        score = ("nothing to score" if "sisdr_step3" not in s else
                 f"SI-SDR on split {s['eval_split']}: mixture {s['sisdr_mixture']:.2f} / step 2 {s['sisdr_step2']:.2f} / "
                 f"step 3 {s['sisdr_step3']:.2f} / supervised {s['sisdr_supervised']:.2f} dB")
    print(f"weakmir train {a.method}: {score} -> {a.out / 'checkpoints'}, {a.out / 'results.json'}")
    return 0


def _add_experiment(sub) -> None:
    p = sub.add_parser(
        "experiment", help="re-run a paper's tables on the embedded corpus",
        description="self-refine: Tables 1-3 of Koo et al. 2023 (classifiers trained on clean / noisy / refined "
                    "labels; separators trained on clean / noisy / refined labels; ablations) on a noisy pop "
                    "corpus made by weakmir synth. score-supervised: Tables 1-2 of Hung et al. 2021 (TCN "
                    "transcriptor, separators trained against it in isolation and jointly with AML / ATL, the "
                    "supervised upper bound and the classifier-critic baseline; note accuracy) on a slakh-like "
                    "corpus, and the SI-SDR gain on the real Bach10 recordings of a separator trained on the "
                    "chorale corpus; its stages train side by side in two one-thread worker processes. weak-mic: "
                    "Tables 3.1, 3.2, 4.2, 5.1 and Figures 3.4, 3.5, 5.3 of Gururani's thesis (attention MIL, its "
                    "baselines, balanced BCE, the semi-supervised VAE, mean teacher, few-label ratios) on the openmic "
                    "synth corpus, 5 seeds each. majl: Tables 2 and 5 and Figures 5-6 of Wei et al. 2024 (pipeline, "
                    "naive joint learning, MAJL-Stage I, MAJL with extra stems-only / pitch-only songs; SDR, GNSDR, "
                    "RPA, RCA; torchcrepe as the peer) on the pop corpus, and on the real MIR-1K clips. Writes "
                    "OUT/results.json, OUT/metrics.csv, OUT/report.md and OUT/report.html (figures in "
                    "OUT/report_files/) and every model under OUT/checkpoints/. A re-run with the same OUT reuses "
                    "the checkpoints already trained and resumes a stage that was killed.",
    )
    p.add_argument("method", choices=["self-refine", "score-supervised", "weak-mic", "majl"])
    p.add_argument("--preset", "--recipe", dest="preset", default="quick",
                   help="quick: 2 CPU cores; paper: the paper's sizes (GPU); tiny: a seconds-long smoke run "
                        "(recipes/METHOD/NAME.yaml); or a YAML recipe file")
    p.add_argument("--separator", choices=["xumx", "hdemucs"], default="xumx",
                   help="separator of Tables 2-3: CrossNet-Open-Unmix (default) or Hybrid Demucs v3 "
                        "(slower on CPU; the paper reports both); self-refine only")
    p.add_argument("--bach10", type=Path, default=None,
                   help="score-supervised: the Bach10 folder to evaluate on (default: $WEAKMIR_BACH10, else "
                        "../shared/data/bach10 beside the repository)")
    p.add_argument("--no-bach10", action="store_true", help="score-supervised: skip the Bach10 evaluation")
    p.add_argument("--openmic", type=Path, default=None,
                   help="weak-mic: a manifest of the real OpenMIC-2018 (weakmir dataset openmic ROOT -o DIR) to run "
                        "the tables on instead of the synth corpus (its VGGish features; scored on observed tags only)")
    p.add_argument("--mir1k", type=Path, default=None,
                   help="majl: the MIR-1K folder (Wavfile/, PitchLabel/) for the real-recordings rows (default "
                        "../shared/data/mir1k beside the repository; skipped with a note when absent)")
    p.add_argument("--out", "-o", type=Path, required=True)
    _add_engine(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_experiment, interrupted=_RESUMES)


def _cmd_experiment(a) -> int:
    engine = _engine(a)
    engine.progress = False  # the experiments print one line per stage instead
    if a.openmic is not None and a.method != "weak-mic":
        raise WeakmirError(f"--openmic applies to weak-mic only; drop it for {a.method}")
    if a.mir1k is not None and a.method != "majl":
        raise WeakmirError(f"--mir1k applies to majl only; drop it for {a.method}")
    if a.method == "majl":
        from .experiments.majl import SUMMARY_ROWS
        from .experiments.majl import experiment as majl_experiment

        r = majl_experiment(a.preset, a.out, progress=not a.quiet, mir1k=a.mir1k, sets=a.sets, engine=engine)
        if r is None:
            return 0
        s = r["summary"]
        row = lambda d: " / ".join(f"{k} {d[f'sdr_{k}']:.2f} dB {d[f'rpa_{k}']:.1f} %"  # noqa: E731
                                   for k in SUMMARY_ROWS)
        m1k = f"; MIR-1K {row(s['mir1k'])}" if s.get("mir1k") else ""
        print(f"weakmir experiment majl: SDR / RPA {row(s)}; torchcrepe on separated {s['rpa_crepe_on_separated']:.1f} %"
              f"{m1k} -> {a.out / 'results.json'}")
        return 0
    if a.method == "weak-mic":
        from .experiments.weak_mic import experiment as weak_experiment

        r = weak_experiment(a.preset, a.out, progress=not a.quiet, openmic=a.openmic, sets=a.sets, engine=engine)
        if r is None:
            return 0
        s = r["summary"]
        f1 = " / ".join(f"{k[3:]} {s[k]['mean']:.2f}" for k in ("f1_att", "f1_fc_t", "f1_fc", "f1_mt", "f1_dgm",
                                                               "f1_missing_as_negative") if k in s)
        gain = f"; MT - ATT at 4 % labels {s['mt_gain_at_4pct']:+.2f}" if "mt_gain_at_4pct" in s else ""
        print(f"weakmir experiment weak-mic: F1 ({s['scored_against']} labels) {f1}{gain} -> {a.out / 'results.json'}")
        return 0
    if a.method == "score-supervised":
        from .experiments.score_supervised import experiment as score_experiment

        r = score_experiment(a.preset, a.out, progress=not a.quiet, bach10=a.bach10, skip_bach10=a.no_bach10,
                             sets=a.sets, engine=engine)
        if r is None:  # a rank other than 0 of a distributed run
            return 0
        s = r["summary"]
        b10 = "skipped" if s["bach10_sisdr_gain"] is None else f"{s['bach10_sisdr_gain']:+.2f} dB"
        print(f"weakmir experiment score-supervised: SI-SDR mixture {s['sisdr_mixture']:.2f} / baseline "
              f"{s['sisdr_classifier_baseline']:.2f} / best {s['sisdr_best']:.2f} ({s['best']}) / supervised "
              f"{s['sisdr_supervised']:.2f} dB, gap closed {s['gap_closed']:.0%}; Bach10 gain {b10} -> "
              f"{a.out / 'results.json'}")
        return 0
    from .experiments.self_refine import experiment

    r = experiment(a.preset, a.out, progress=not a.quiet, separator=a.separator, sets=a.sets, engine=engine)
    if r is None:
        return 0
    s = r["summary"]
    print(f"weakmir experiment self-refine: SDR clean {s['sdr_clean']:.2f} / noisy {s['sdr_noisy']:.2f} / refined "
          f"{s['sdr_refined']:.2f} dB, gap closed {s['gap_closed']:.0%}; multi-label acc clean "
          f"{s['acc_multi_clean']:.3f} / refined {s['acc_multi_refined']:.3f} -> {a.out / 'results.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="weakmir",
        description="Train music models from the labels people actually have. "
                    "Run 'weakmir VERB --help' for each verb.",
    )
    parser.add_argument("--version", action="version", version=f"weakmir {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    _add_synth(sub)
    _add_info(sub)
    _add_evaluate(sub)
    _add_dataset(sub)
    _add_separate(sub)
    _add_transcribe(sub)
    _add_pitch(sub)
    _add_tag(sub)
    _add_features(sub)
    _add_refine(sub)
    _add_train(sub)
    _add_experiment(sub)
    return parser


class _Notes(logging.Handler):
    """Prints the ``weakmir`` logger's notices (:func:`weakmir.errors.notice`) as ``weakmir: note: ...`` on
    the current stderr."""

    def emit(self, record):
        print(f"weakmir: note: {record.getMessage()}", file=sys.stderr)


def main(argv=None) -> int:
    parser = build_parser()
    log, notes = logging.getLogger("weakmir"), _Notes(logging.WARNING)
    log.addHandler(notes)
    log.propagate, propagate = False, log.propagate
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, interrupt) if on_main else None  # SIGTERM cleans up as Ctrl-C
    args = None
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except _UsageError as e:
        print(f"{e}", file=sys.stderr)
        return 2
    except WeakmirError as e:
        print(f"weakmir: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        from .files import remove_pending

        remove_pending()
        who = " ".join(["weakmir", *([args.verb] if getattr(args, "verb", None) else [])])
        print(f"{who}: interrupted; {getattr(args, 'interrupted', 'nothing was written')}", file=sys.stderr)
        return 130
    finally:
        log.removeHandler(notes)
        log.propagate = propagate
        if on_main:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    raise SystemExit(main())
