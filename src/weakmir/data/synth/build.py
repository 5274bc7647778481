"""Build the embedded corpus: ``weakmir synth OUT --preset chorale|pop|slakh``.

Layout written under ``OUT``::

    OUT/manifest.json                 the corpus (weakmir.data.manifest)
    OUT/synth.json                    the options it was built with
    OUT/tracks/<track-id>/
        mixture.flac                  sum of the clean stems (no clipping)
        stems/<stem>.flac             clean stems, one per part
        noisy/<stem>.flac             altered audio of bleed/merge stems
        notes/<stem>.csv              score notes (onset, offset, pitch, velocity)
        f0/<stem>.csv                 f0 of monophonic parts on a 10 ms hop
        score.mid                     all parts, one MIDI instrument per stem
        track.json                    the track record (written last)

Determinism: track ``i`` depends only on ``(seed, preset, i)`` and the
options, never on ``--jobs`` or on which tracks were already there. Each
track is written into a temporary folder and renamed when complete, so an
interrupted run leaves no half-written track, and a re-run skips finished
tracks. ``manifest.json`` is (re)written atomically at the end.

SoundFonts: with more than one (``--soundfont A --soundfont B``) each part
plays one drawn at random, recorded as its stem's ``provenance.soundfont``;
the draw has its own generator, so every other draw of a track is the one of
a one-SoundFont corpus.

Levels: parts get their preset gains, then all stems of a track are scaled
together so the mixture peaks at −1 dBFS; files are 16-bit FLAC (as MUSDB18), so
``mixture == sum(stems)`` up to 16-bit rounding (< 1e-4 per sample).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ...audio.effects import reverb, tilt
from ...audio.io import save
from ...errors import WeakmirError
from ...files import atomic_write_text, check_output_folder
from ..corruption import NoiseRates, apply_plan, drop_tags, plan_corruption
from ..labels import OPENMIC, STEMS4, LabelSet, instrument_stem, instrument_tag
from ..manifest import Manifest, Stem, Track
from ..notes import f0_from_notes, is_monophonic, write_f0, write_notes
from .render import Part, Renderer, find_soundfont

PRESETS = ("chorale", "pop", "slakh", "openmic")
PEAK = 10 ** (-1.0 / 20.0)


def peak_normalise(stems: list) -> list:
    """The stems scaled by one gain so that their mixture peaks at −1 dBFS — or lower, where a stem alone
    would pass full scale (stems that cancel in the mixture, e.g. one darkened by ``--timbre``: its RMS
    kept, its peak raised): then the loudest stem peaks at −1 dBFS.

    Shape: a list of ``(C, T)`` arrays, the same list back, scaled. Raises ``ValueError`` on a silent mixture.
    """
    peak = float(np.abs(np.sum(stems, axis=0)).max())
    if not peak > 0:
        raise ValueError("silent mixture")
    scale = PEAK / peak
    loudest = max(float(np.abs(a).max()) for a in stems)
    if loudest * scale > 1.0:
        scale = PEAK / loudest
    return [a * scale for a in stems]


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides what ``weakmir synth`` writes (``jobs`` aside)."""

    preset: str = "chorale"
    tracks: int = 20
    seconds: float = 20.0
    sample_rate: int = 44100
    seed: int = 0
    bleed: float = 0.0
    wrong_label: float = 0.0
    merge: float = 0.0
    missing: float = 0.0
    programs: str = "bach10"
    rests: float = 0.0  # chorale: chance a voice rests through each 8-quarter stretch
    timbre: float = 0.0  # each part's spectral tilt drawn from ±timbre dB/octave above 500 Hz (0: as rendered)
    timbre_center: float = 0.0  # ... around this tilt, dB/octave (< 0: darker than the patches on average)
    room: float = 0.0  # the parts of a track share one reverberant room, wet level drawn from [0, room] (0: dry)
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1)
    f0_hop: float = 0.01
    soundfont: str = ""
    soundfonts: tuple[str, ...] = ()  # more SoundFonts: each part plays one drawn from soundfont + soundfonts
    jobs: int = field(default=0, compare=False)

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise WeakmirError(f"unknown preset {self.preset!r}; use one of {', '.join(PRESETS)}")
        if self.tracks < 1:
            raise WeakmirError(f"--tracks {self.tracks}: need at least 1 track")
        if not 1.0 <= self.seconds <= 3600:
            raise WeakmirError(f"--seconds {self.seconds}: use 1 to 3600 seconds per track")
        if not 8000 <= self.sample_rate <= 192000:
            raise WeakmirError(f"--sample-rate {self.sample_rate}: use 8000 to 192000 Hz")
        if not 0.0 <= self.rests < 1.0:
            raise WeakmirError(f"--rests {self.rests}: use a chance in [0, 1)")
        if not 0.0 <= self.timbre <= 12.0:
            raise WeakmirError(f"--timbre {self.timbre}: use 0 to 12 dB per octave")
        if not -12.0 <= self.timbre_center <= 12.0:
            raise WeakmirError(f"--timbre-center {self.timbre_center}: use -12 to 12 dB per octave")
        if not 0.0 <= self.room <= 1.0:
            raise WeakmirError(f"--room {self.room}: use a wet level from 0 to 1")
        if self.missing and self.preset == "openmic":
            raise WeakmirError("--missing does not apply to the openmic preset: its clips observe OpenMIC's ~10 % "
                               "of the labels (weakmir.data.synth.openmic); leave --missing out")
        if self.rests and self.preset != "chorale":
            raise WeakmirError(f"--rests applies to the chorale preset, not {self.preset!r}")
        if len(self.splits) != 3 or abs(sum(self.splits) - 1.0) > 1e-6 or min(self.splits) < 0:
            raise WeakmirError(f"--splits {self.splits}: give three fractions train,valid,test that sum to 1")
        try:
            NoiseRates(self.bleed, self.wrong_label, self.merge)
            drop_tags([], OPENMIC[:1], self.missing, np.random.default_rng(0))
        except ValueError as e:
            raise WeakmirError(str(e)) from None

    @property
    def fonts(self) -> list[str]:
        """Every SoundFont a part may play: ``soundfont`` then ``soundfonts`` (``Part.soundfont`` indexes it)."""
        return [self.soundfont, *self.soundfonts]

    @property
    def rates(self) -> NoiseRates:
        return NoiseRates(self.bleed, self.wrong_label, self.merge)

    def options(self) -> dict:
        """The options that decide track content (not ``tracks`` nor ``jobs``)."""
        d = asdict(self)
        d.pop("tracks")
        d.pop("jobs")
        for k in ("rests", "timbre", "timbre_center", "room", "soundfonts"):
            if not d[k]:
                d.pop(k)  # corpora made before the option keep their fingerprint
        if self.soundfonts:
            d["soundfonts"] = list(self.soundfonts)
        d["splits"] = list(self.splits)
        return d

    def fingerprint(self) -> str:
        return hashlib.sha1(json.dumps(self.options(), sort_keys=True).encode()).hexdigest()[:12]


def track_split(index: int, seed: int, splits) -> str:
    """Split of track ``index``: exact proportions in every block of 10 tracks."""
    block = index // 10
    perm = np.random.default_rng([seed, 7919, block]).permutation(10)
    n_train = int(round(splits[0] * 10))
    n_valid = int(round(splits[1] * 10))
    r = perm[index % 10]
    return "train" if r < n_train else "valid" if r < n_train + n_valid else "test"


_PLAYABLE: dict = {}


def openmic_classes(fonts) -> tuple[str, ...]:
    """The OpenMIC classes every one of the SoundFonts ``fonts`` has a patch for (the openmic preset draws
    from these; :func:`weakmir.data.synth.openmic.playable`)."""
    from .openmic import playable
    from .render import presets

    key = tuple(str(f) for f in fonts)
    if key not in _PLAYABLE:
        sets = [presets(f) for f in key]
        _PLAYABLE[key] = playable(set.intersection(*sets)) if sets else ()
    return _PLAYABLE[key]


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


_RENDERER: Renderer | None = None


def _init_worker(fonts: list[str], sample_rate: int, dynamic: bool = False) -> None:
    global _RENDERER
    _RENDERER = Renderer(fonts, sample_rate, dynamic=dynamic)


def _score_midi(parts: list[Part], path: Path) -> None:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    for p in parts:
        inst = pretty_midi.Instrument(program=int(p.program), is_drum=p.is_drum, name=p.name)
        for on, off, pitch, vel in p.notes:
            inst.notes.append(pretty_midi.Note(velocity=int(vel), pitch=int(pitch), start=float(on), end=float(off)))
        pm.instruments.append(inst)
    tmp = path.with_name(f".{path.name}.tmp")
    pm.write(str(tmp))
    os.replace(tmp, path)


def render_track(config: SynthConfig, index: int, out: Path) -> dict:
    """Render track ``index`` into ``out/tracks/<id>/``; returns the track record dict."""
    from .chorale import catalog, chorale_parts
    from .openmic import observe_tags, openmic_parts
    from .pop import pop_parts, slakh_parts

    rng = np.random.default_rng([config.seed, PRESETS.index(config.preset), index])
    track_id = f"{config.preset}-{index:04d}"
    if config.preset == "chorale":
        cat = catalog()
        order = np.random.default_rng([config.seed, 104729]).permutation(len(cat))
        parts, duration, prov = chorale_parts(cat[order[index % len(cat)]], rng, config.seconds, config.programs,
                                                    config.rests)
    elif config.preset == "slakh":
        parts, duration, prov = slakh_parts(rng, config.seconds)
    elif config.preset == "openmic":
        parts, duration, prov = openmic_parts(rng, config.seconds, openmic_classes(config.fonts))
    else:
        parts, duration, prov = pop_parts(rng, config.seconds)
    sr = config.sample_rate
    frames = int(round(duration * sr))

    fonts = config.fonts
    if config.soundfonts:  # its own generator too, so the draws below stay those of a one-SoundFont corpus
        frng = np.random.default_rng([config.seed, PRESETS.index(config.preset), index, 6011])
        for p in parts:
            p.soundfont = int(frng.integers(len(fonts)))
            p.meta["soundfont"] = Path(fonts[p.soundfont]).stem
    dynamic = config.preset == "openmic"  # many short clips: a fresh synth each must be cheap (Renderer)
    same = (_RENDERER is not None and _RENDERER.sample_rate == sr and _RENDERER.soundfonts == [Path(f) for f in fonts]
            and _RENDERER.dynamic == dynamic)
    renderer = _RENDERER if same else Renderer(fonts, sr, dynamic=dynamic)
    audio = renderer.render_parts(parts, frames)
    # timbre and room draw from their own generator: the draws below stay those of a corpus without them
    trng = np.random.default_rng([config.seed, PRESETS.index(config.preset), index, 6007])
    if config.timbre or config.timbre_center:
        slopes = config.timbre_center + trng.uniform(-config.timbre, config.timbre, len(parts))
        audio = [tilt(a, sr, s) for a, s in zip(audio, slopes)]
        for p, s in zip(parts, slopes):
            p.meta["tilt_db_per_octave"] = round(float(s), 2)
    room = None
    if config.room:
        room = {"room_size": float(trng.uniform(0.3, 0.9)), "damping": float(trng.uniform(0.2, 0.8)),
                "wet_level": float(trng.uniform(0.0, config.room))}
        audio = [reverb(a, sr, **room) for a in audio]
    try:
        audio = peak_normalise(audio)
    except ValueError:
        raise WeakmirError(f"track {track_id}: rendered silence; check that {' and '.join(fonts)} "
                           "hold General MIDI instruments") from None

    labels = [instrument_stem(p.instrument) for p in parts]
    plan = plan_corruption(labels, config.rates, rng)
    noisy = apply_plan(audio, plan)

    final = out / "tracks" / track_id
    tmp = out / "tracks" / f".{track_id}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rel = lambda p: _rel(final / p.relative_to(tmp), out)  # noqa: E731  (paths as they will be)

    stems = []
    for i, (p, a) in enumerate(zip(parts, audio)):
        clean = save(tmp / "stems" / f"{p.name}.flac", a, sr, subtype="PCM_16")
        notes_p = tmp / "notes" / f"{p.name}.csv"
        write_notes(notes_p, p.notes)
        f0_p = None
        if not p.is_drum and is_monophonic(p.notes):
            f0_p = tmp / "f0" / f"{p.name}.csv"
            write_f0(f0_p, *f0_from_notes(p.notes, duration, config.f0_hop))
        c = plan[i]
        own = labels[i]
        observed, true, instruments = own, {own}, [p.instrument]
        corruption, path, clean_path, hidden = None, clean, None, False
        if c is not None and c["kind"] in ("bleed", "merge"):
            j = c["source"]
            true.add(labels[j])
            instruments.append(parts[j].instrument)
            x = noisy[i]
            corruption = {"kind": c["kind"], "source": parts[j].name}
            if c["kind"] == "bleed":
                corruption["gain_db"] = round(c["gain_db"], 2)
            pk = float(np.abs(x).max())
            if pk > PEAK:
                x = x * (PEAK / pk)
                corruption["rescaled_db"] = round(20 * np.log10(PEAK / pk), 2)
            path = save(tmp / "noisy" / f"{p.name}.flac", x, sr, subtype="PCM_16")
            clean_path = clean
        elif c is not None and c["kind"] == "wrong_label":
            observed = c["label"]
            corruption = {"kind": "wrong_label", "true_label": own}
        elif c is not None and c["kind"] == "absorbed":
            hidden = True
        stem_prov = {"program": int(p.program), "is_drum": bool(p.is_drum), "pan": round(p.pan, 3),
                     "gain_db": round(p.gain_db, 2), "source_label": own, **p.meta}
        if hidden:
            stem_prov["merged_into"] = parts[c["into"]].name
        stems.append(Stem(
            id=p.name, path=rel(path), sample_rate=sr, channels=2, frames=frames,
            labels=LabelSet.complete([observed], STEMS4), true_labels=sorted(true, key=STEMS4.index),
            instruments=instruments, notes=rel(notes_p), f0=rel(f0_p) if f0_p else None,
            corruption=corruption, clean_path=rel(clean_path) if clean_path else None, hidden=hidden,
            provenance=stem_prov,
        ))
    mixture = save(tmp / "mixture.flac", np.sum(audio, axis=0), sr, subtype="PCM_16")
    _score_midi(parts, tmp / "score.mid")
    true_tags = sorted({t for p in parts if (t := instrument_tag(p.instrument))}, key=OPENMIC.index)
    tags = observe_tags(true_tags, rng) if config.preset == "openmic" else drop_tags(true_tags, OPENMIC, config.missing, rng)
    track = Track(
        id=track_id, split=track_split(index, config.seed, config.splits), sample_rate=sr,
        duration=round(frames / sr, 6), stems=stems, mixture=rel(mixture), score=rel(tmp / "score.mid"),
        tags=tags, true_tags=true_tags,
        provenance={"preset": config.preset, "index": index, "seed": config.seed,
                    "config": config.fingerprint(), **prov,
                    **({"room": {k: round(v, 3) for k, v in room.items()}} if room else {})},
    )
    record = track.to_dict(STEMS4, OPENMIC)
    (tmp / "track.json").write_text(json.dumps(record, indent=1) + "\n")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return record


def _worker(args):
    config, index, out = args
    return index, render_track(config, index, Path(out))


def _load_finished(out: Path, config: SynthConfig, index: int) -> dict | None:
    p = out / "tracks" / f"{config.preset}-{index:04d}" / "track.json"
    if not p.exists():
        return None
    try:
        rec = json.loads(p.read_text())
    except json.JSONDecodeError:
        return None
    return rec if rec.get("provenance", {}).get("config") == config.fingerprint() else None


def build_corpus(out: str | os.PathLike, config: SynthConfig, progress: bool = True) -> tuple[Manifest, dict]:
    """Render (or resume) a corpus into ``out``; returns the manifest and run stats."""
    out = Path(out)
    soundfont = find_soundfont(config.soundfont or None)
    extra = tuple(str(find_soundfont(p)) for p in config.soundfonts)
    config = SynthConfig(**{**asdict(config), "soundfont": str(soundfont), "soundfonts": extra,
                            "splits": tuple(config.splits)})
    check_output_folder(out, inputs=config.fonts, option="OUT")
    opts_path = out / "synth.json"
    if opts_path.exists():
        prev = json.loads(opts_path.read_text()).get("options")
        if prev != config.options():
            diff = sorted(k for k in config.options() if prev is None or prev.get(k) != config.options()[k])
            raise WeakmirError(f"{out}: was built with other options ({', '.join(diff)} differ); use a new folder or the same options to resume")
    created, had_opts = not out.exists(), opts_path.exists()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(opts_path, json.dumps({"options": config.options(), "weakmir": "synth"}, indent=1) + "\n")
    try:
        return _render(out, config, progress)
    except BaseException:
        # a run that failed (or was stopped) before any track was finished leaves the folder as it found it,
        # so a corrected re-run is not refused as "built with other options"
        if not any(_load_finished(out, config, i) is not None for i in range(config.tracks)):
            if created:
                shutil.rmtree(out, ignore_errors=True)
            elif not had_opts:
                opts_path.unlink(missing_ok=True)
        raise


def _render(out: Path, config: SynthConfig, progress: bool) -> tuple[Manifest, dict]:
    """Render the tracks not yet finished in ``out`` and write the manifest (:func:`build_corpus`)."""

    t0 = time.perf_counter()
    records: dict[int, dict] = {}
    todo = []
    for i in range(config.tracks):
        rec = _load_finished(out, config, i)
        if rec is None:
            todo.append(i)
        else:
            records[i] = rec
    jobs = config.jobs or min(os.cpu_count() or 1, max(1, len(todo)))
    from tqdm import tqdm

    bar = tqdm(total=config.tracks, initial=len(records), desc=f"synth {config.preset}", unit="track",
               disable=not progress, leave=False)
    try:
        if jobs <= 1 or len(todo) <= 1:
            _init_worker(config.fonts, config.sample_rate, config.preset == "openmic")
            for i in todo:
                records[i] = render_track(config, i, out)
                bar.update()
        else:
            # spawn, not fork: forking a process that already holds torch/OpenMP
            # threads (a test session, a notebook) can deadlock the children
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                                     initargs=(config.fonts, config.sample_rate, config.preset == "openmic")) as ex:
                futs = [ex.submit(_worker, (config, i, str(out))) for i in todo]
                for f in as_completed(futs):
                    i, rec = f.result()
                    records[i] = rec
                    bar.update()
    finally:
        bar.close()
    elapsed = time.perf_counter() - t0
    tracks = [Track.from_dict(records[i], str(out)) for i in range(config.tracks)]
    manifest = Manifest(tracks=tracks, root=out.resolve(), name=f"weakmir synth {config.preset} seed {config.seed}")
    manifest.write(out / "manifest.json")
    rendered_seconds = sum(records[i]["duration"] for i in todo)
    stats = {"rendered_tracks": len(todo), "skipped_tracks": config.tracks - len(todo), "seconds": elapsed,
             "x_realtime": rendered_seconds / elapsed if elapsed > 0 and todo else None, "jobs": jobs}
    return manifest, stats
