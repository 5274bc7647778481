"""MUSDB18, MUSDB18-HQ and the MDX23 label-noise set.

Citations: Z. Rafii, A. Liutkus, F.-R. Stöter, S. I. Mimilakis, R. Bittner,
"The MUSDB18 corpus for music separation" (2017) and "MUSDB18-HQ" (2019),
academic use only; Y. Mitsufuji et al., "Music Demixing Challenge 2021" and the
MDX23 label-noise set (licensed by Moises.AI, challenge use). The validation
split (14 training tracks) is the one of the ``musdb`` package.

Expected trees::

    MUSDB18 (stem files; decoded once to 16-bit FLAC under OUT/audio/)
    ROOT/train/<Artist - Title>.stem.mp4      streams: 0 mixture, 1 drums, 2 bass, 3 other, 4 vocals
    ROOT/test/<Artist - Title>.stem.mp4       (a flat ROOT/*.stem.mp4 is read as the test split)

    MUSDB18-HQ (wav, referenced in place)
    ROOT/train/<Artist - Title>/{mixture,drums,bass,other,vocals}.wav
    ROOT/test/<Artist - Title>/...

    MDX23 label noise (the HQ layout, labels are the file names and may be wrong)
    ROOT/[train/]<track>/{drums,bass,other,vocals}.wav      (mixture.wav optional)

Labels: a stem's observed label is its file name (stems4); in MUSDB18(-HQ)
the true label is the same; in MDX23 the true labels are unknown (None), and
every track goes to ``train`` (the paper trains on all 203 songs).
"""

from __future__ import annotations

from pathlib import Path

from ...audio.io import check, save
from ...audio.stems import MUSDB_STREAMS, read_stems
from ...errors import WeakmirError
from ..labels import STEMS4, LabelSet
from ..manifest import Manifest, Stem, Track

VALIDATION = (
    "Actions - One Minute Smile", "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies", "Patrick Talbot - A Reason To Leave", "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero", "Fergessen - Nos Palpitants", "Leaf - Summerghost",
    "Skelpolu - Human Mistakes", "Young Griffo - Pennies", "ANiMAL - Rockshow", "James May - On The Line",
    "Meaxic - Take A Step", "Traffic Experiment - Sirens",
)


def _split(subset: str, name: str) -> str:
    if subset == "test":
        return "test"
    return "valid" if name in VALIDATION else "train"


def _stem(track_dir_rel: str, label: str, path: Path, noisy: bool, out_root: Path) -> Stem:
    a = check(path, max_channels=2)  # decodable, not empty, mono or stereo
    sr, ch, frames = a.sample_rate, a.channels, a.frames
    p = str(path.resolve())
    return Stem(id=label, path=p, sample_rate=sr, channels=ch, frames=frames,
                labels=LabelSet.complete([label], STEMS4), true_labels=None if noisy else [label],
                instruments=None, provenance={"file": path.name})


def _same_shape(folder: Path, stems: list[Stem]) -> None:
    """A track's stems share one rate and length (they sum to its mixture)."""
    first = stems[0]
    for s in stems[1:]:
        if (s.sample_rate, s.frames) != (first.sample_rate, first.frames):
            raise WeakmirError(f"{folder / s.provenance['file']}: {s.frames} frames at {s.sample_rate} Hz but "
                               f"{first.provenance['file']} has {first.frames} at {first.sample_rate} Hz; a track's "
                               "stems must be equally long: re-export them")


def _check_root(root: Path, what: str) -> None:
    if not root.is_dir():
        raise WeakmirError(f"{root}: no such folder; point to the {what} root (the folder holding train/ and test/)")


def load_hq(root: str | Path, out: str | Path, noisy: bool = False) -> Manifest:
    """MUSDB18-HQ (``noisy=False``) or the MDX23 label-noise set (``noisy=True``): wavs referenced in place."""
    root, out = Path(root), Path(out)
    what = "MDX23 label-noise" if noisy else "MUSDB18-HQ"
    _check_root(root, what)
    subsets = [(s, root / s) for s in ("train", "test") if (root / s).is_dir()] or [("train", root)]
    tracks = []
    for subset, folder in subsets:
        for d in sorted(p for p in folder.iterdir() if p.is_dir()):
            files = {lab: d / f"{lab}.wav" for lab in STEMS4 if (d / f"{lab}.wav").exists()}
            if not files:
                continue
            missing = [lab for lab in STEMS4 if lab not in files]
            if missing and not noisy:
                raise WeakmirError(f"{d}: missing {', '.join(m + '.wav' for m in missing)}; restore them or remove the track folder")
            stems = [_stem(d.name, lab, p, noisy, out) for lab, p in files.items()]
            _same_shape(d, stems)
            sr = stems[0].sample_rate
            mixture = d / "mixture.wav"
            frames = max(s.frames for s in stems)
            tracks.append(Track(
                id=d.name, split="train" if noisy else _split(subset, d.name), sample_rate=sr,
                duration=frames / sr, stems=stems, mixture=str(mixture.resolve()) if mixture.exists() else None,
                provenance={"dataset": "mdx23-labelnoise" if noisy else "musdb18-hq", "subset": subset},
            ))
    if not tracks:
        raise WeakmirError(f"{root}: no track folders with {'/'.join(STEMS4)}.wav found; check the {what} path")
    m = Manifest(tracks=tracks, root=out.resolve(), name=what, references_in_place=[str(root.resolve())])
    m.write(out / "manifest.json")
    return m


def load_stems(root: str | Path, out: str | Path, progress: bool = True) -> Manifest:
    """MUSDB18 (``.stem.mp4``): each stream decoded once to 16-bit FLAC in ``out/audio/<track>/``.

    Re-running skips tracks whose FLACs are already there.
    """
    from tqdm import tqdm

    root, out = Path(root), Path(out)
    _check_root(root, "MUSDB18")
    subsets = [(s, root / s) for s in ("train", "test") if (root / s).is_dir()] or [("test", root)]
    files = [(subset, f) for subset, folder in subsets for f in sorted(folder.glob("*.stem.mp4"))]
    if not files:
        raise WeakmirError(f"{root}: no .stem.mp4 files found; check the MUSDB18 path (for wav folders use musdb-hq)")
    tracks = []
    for subset, f in tqdm(files, desc="decode MUSDB18", unit="track", disable=not progress, leave=False):
        name = f.name[: -len(".stem.mp4")]
        dest = out / "audio" / name
        paths = {s: dest / f"{s}.flac" for s in MUSDB_STREAMS}
        if not all(p.exists() for p in paths.values()):
            audio, sr = read_stems(f)
            if audio.shape[0] < len(MUSDB_STREAMS):
                raise WeakmirError(f"{f}: has {audio.shape[0]} audio streams, MUSDB18 stem files have 5")
            for k, s in enumerate(MUSDB_STREAMS):
                x = audio[k]
                peak = float(abs(x).max())
                save(paths[s], x / peak * 0.999 if peak > 1 else x, sr, subtype="PCM_16")
        stems = [_stem(name, lab, paths[lab], False, out) for lab in STEMS4]
        for s in stems:
            s.path = str(Path(s.path).relative_to(out.resolve()))
        sr = stems[0].sample_rate
        tracks.append(Track(
            id=name, split=_split(subset, name), sample_rate=sr, duration=stems[0].frames / sr, stems=stems,
            mixture=str(paths["mixture"].relative_to(out)),
            provenance={"dataset": "musdb18", "subset": subset, "file": str(f.resolve())},
        ))
    m = Manifest(tracks=tracks, root=out.resolve(), name="MUSDB18")
    m.write(out / "manifest.json")
    return m
