"""MIR-1K (Hsu & Jang, TASLP 2010): 1000 Chinese pop karaoke clips, voice and accompaniment, vocal pitch.

Expected tree (the published ``MIR-1K`` folder)::

    ROOT/Wavfile/<singer>_<song>_<clip>.wav     16 kHz stereo: LEFT = accompaniment, RIGHT = singing voice
    ROOT/PitchLabel/<name>.pv                   one MIDI semitone per 20 ms frame, 0 = unvoiced;
                                                frames = floor(duration / 0.02) - 1, frame k at 0.02 (k + 1) s
                                                (the centre of its 40-ms window)
    ROOT/vocal-nonvocalLabel/<name>.vocal       0/1 per frame (read: it must match the .pv frame count)
    ROOT/UnvoicedFrameLabel/<name>.unv          MIR-1K unvoiced categories per frame (kept in provenance only)
    ROOT/LyricsWav, ROOT/Lyrics, ROOT/UndividedWavfile  (not used)

What is written to OUT: ``tracks/<name>/{mixture,vocals,accompaniment}.flac`` (mono 16 kHz; mixture =
(left + right) / 2, the stems are the halves it sums, so a separated voice is scored against what the
mixture holds) and ``tracks/<name>/f0.csv`` (the .pv on its own frame grid, Hz). Every track is
``full`` (voice stem + f0). Missing: nothing MAJL needs; a clip without a .pv has no f0 (labelled
``stems``); the lyrics are not read.

Splits are by song (``<singer>_<song>``), never by clip: a song's clips stay on one side. The paper
splits MIR-1K 80/20 at random; we keep 10 % of the songs of that 80 for valid (model selection),
chosen by the sha1 of the song name (reproducible without a seed file).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ...audio.io import check, load as load_audio, save
from ...errors import WeakmirError
from ..labels import STEMS4, LabelSet
from ..manifest import Manifest, Stem, Track
from ..notes import write_f0

HOP = 0.02
TEST, VALID = 0.2, 0.1


def song_of(name: str) -> str:
    """``"abjones_1_01"`` -> ``"abjones_1"`` (singer and song; the clip number dropped)."""
    parts = name.split("_")
    return "_".join(parts[:-1]) if len(parts) > 2 else name


def folds_by_song(names, folds: int) -> list[list[str]]:
    """Clip names split into ``folds`` folds by song (:func:`song_of`), for cross-validation on the training
    clips: the songs sorted by name, song ``i`` in fold ``i mod folds``; a song's clips stay in one fold.
    ``(n,) names -> folds lists``, each in the order of ``names``."""
    songs = sorted({song_of(n) for n in names})
    if not 2 <= folds <= len(songs):
        raise WeakmirError(f"{folds} folds of {len(songs)} songs: give between 2 and {len(songs)}")
    fold_of = {s: i % folds for i, s in enumerate(songs)}
    return [[n for n in names if fold_of[song_of(n)] == k] for k in range(folds)]


def hash_unit(key: str) -> float:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 16 ** 8


def split_of(song: str, test: float = TEST, valid: float = VALID) -> str:
    """Split of a song by the sha1 of its name: the lowest ``test`` fraction test, the next ``valid`` valid."""
    u = hash_unit(song)
    return "test" if u < test else "valid" if u < test + valid else "train"


def read_pv(path) -> tuple[np.ndarray, np.ndarray]:
    """A MIR-1K ``.pv`` file: ``times (n,)`` s (frame k at 0.02 (k + 1)) and ``f0 (n,)`` Hz (0 unvoiced)."""
    path = Path(path)
    try:
        semis = np.loadtxt(path, ndmin=1)
    except ValueError as e:
        raise WeakmirError(f"{path}: not a MIR-1K pitch file ({e}); it holds one MIDI semitone per line") from e
    if not np.isfinite(semis).all() or (semis < 0).any():
        raise WeakmirError(f"{path}: NaN or negative semitones; restore the file from MIR-1K")
    times = HOP * (np.arange(len(semis)) + 1)
    return times, np.where(semis > 0, 440.0 * 2.0 ** ((semis - 69.0) / 12.0), 0.0)


def expected_frames(n_samples: int, sample_rate: int) -> int:
    """MIR-1K's label frame count of a clip: ``floor(duration / 0.02) - 1``."""
    return int(np.floor(n_samples / sample_rate / HOP + 1e-9)) - 1


def load(root: str | Path, out: str | Path, progress: bool = True) -> Manifest:
    """Read MIR-1K at ``root`` and write ``out/manifest.json`` (module docstring)."""
    from tqdm import tqdm

    root, out = Path(root), Path(out)
    wavs = sorted((root / "Wavfile").glob("*.wav")) if (root / "Wavfile").is_dir() else []
    if not wavs:
        raise WeakmirError(f"{root}: no Wavfile/*.wav; point to the MIR-1K folder (it holds Wavfile/ and PitchLabel/)")
    plan = []
    for wav in wavs:  # every clip checked before anything is written
        name = wav.stem
        info = check(wav)
        if info.channels != 2:
            raise WeakmirError(f"{wav}: {info.channels} channel(s); MIR-1K clips are stereo (left accompaniment, "
                               "right voice): restore the file")
        pv = root / "PitchLabel" / f"{name}.pv"
        label = None
        if pv.exists():
            times, hz = read_pv(pv)
            want = expected_frames(info.frames, info.sample_rate)
            if len(times) != want:
                raise WeakmirError(f"{pv}: {len(times)} frames, but a {info.frames / info.sample_rate:.2f}-s clip has "
                                   f"{want} (floor(duration / 0.02) - 1); the label and the wav do not belong together")
            vocal = root / "vocal-nonvocalLabel" / f"{name}.vocal"
            if vocal.exists() and len(np.loadtxt(vocal, ndmin=1)) != len(times):
                raise WeakmirError(f"{vocal}: frame count differs from {pv.name}; restore both from MIR-1K")
            label = (times, hz)
        plan.append((wav, info, label))
    tracks = []
    for wav, info, label in tqdm(plan, desc="MIR-1K", unit="clip", disable=not progress, leave=False):
        name = wav.stem
        x, _ = load_audio(wav)  # (2, L) at its own rate
        acc, voc = x[0] / 2, x[1] / 2
        dest = out / "tracks" / name
        paths = {"mixture": dest / "mixture.flac", "vocals": dest / "vocals.flac", "accompaniment": dest / "accompaniment.flac"}
        for k, a in (("mixture", acc + voc), ("vocals", voc), ("accompaniment", acc)):
            save(paths[k], a[None], info.sample_rate, subtype="PCM_24")
        f0 = None
        if label is not None:
            f0 = dest / "f0.csv"
            write_f0(f0, label[0], label[1], (label[1] > 0).astype(int))
        n = x.shape[1]
        stems = [Stem(id=k, path=str(paths[k].relative_to(out)), sample_rate=info.sample_rate, channels=1, frames=n,
                      labels=LabelSet.complete([lab], STEMS4), true_labels=[lab],
                      f0=str(f0.relative_to(out)) if (k == "vocals" and f0) else None,
                      provenance={"source_label": lab, "channel": "right" if k == "vocals" else "left"})
                 for k, lab in (("vocals", "vocals"), ("accompaniment", "other"))]
        song = song_of(name)
        tracks.append(Track(id=name, split=split_of(song), sample_rate=info.sample_rate, duration=n / info.sample_rate,
                            stems=stems, mixture=str(paths["mixture"].relative_to(out)),
                            provenance={"dataset": "mir-1k", "song": song, "file": str(wav.resolve())}))
    m = Manifest(tracks=tracks, root=out.resolve(), name="MIR-1K")
    m.write(out / "manifest.json")
    return m


__all__ = ["hash_unit", "song_of", "folds_by_song", "split_of", "read_pv", "expected_frames", "load"]
