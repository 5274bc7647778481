"""The manifest: one typed, versioned, human-readable record of a corpus.

A manifest is a JSON file (``manifest.json``)::

    {"format": "weakmir.manifest", "version": 1,
     "stem_vocabulary": "stems4", "tag_vocabulary": "openmic",
     "tracks": [ {track}, ... ]}

Each *track*: ``id``, ``split`` (train/valid/test), ``mixture`` (path or
null), ``sample_rate``, ``duration`` (s), ``score`` (MIDI path or null),
``tags`` (observed clip tags, :class:`LabelSet` dict or null), ``true_tags``
(list or null), ``provenance`` (free dict), ``stems`` and, optionally (each left out when null):
``features`` (a ``.npy`` file of the clip's instance features ``(instances, dim)``, e.g. OpenMIC's
VGGish), ``f0`` (an f0 CSV of the track's lead voice, for data with pitch but no voice stem, as
MIR-ST500) and ``labelling`` (what the track is labelled with for joint separation + pitch,
majl_wei2024: ``"full"`` — voice stem and its f0 —, ``"stems"`` — stems only, any f0 is ignored — or
``"pitch"`` — mixture and f0 only, any stem audio is ignored; when null it follows from what the track
has, :func:`weakmir.data.voice.labelling`).

Each *stem*: ``id``, ``path``, ``sample_rate``, ``channels``, ``frames``,
``labels`` (observed stem labels, LabelSet dict), ``true_labels`` (list or
null when unknown), ``instruments`` (instrument names or null), ``notes``
(CSV path or null), ``f0`` (CSV path or null; only for monophonic parts),
``corruption`` (null or ``{"kind": "bleed"|"wrong_label"|"merge", ...}``),
``clean_path`` (the uncorrupted audio when ``path`` was altered, else null),
``hidden`` (true when the stem was merged into another and is not part of the
observed data) and ``provenance``.

Paths are POSIX, relative to the manifest's folder (absolute ones are kept).
Every path must lie inside the manifest's folder, or inside one of the
folders listed in the optional top-level ``references_in_place`` (a dataset
referenced where it lies, as ``weakmir dataset musdb-hq`` writes, or the
corpus a refined manifest points back to; absolute or relative to the
manifest's folder): a path like ``../../etc/passwd`` is an error naming the
stem. The check is on the path as written (``..`` folded), not on where
symbolic links lead.
Two views of a track: :meth:`Track.observed_stems` (what a user of the noisy
data sees) and :meth:`Track.clean_stems` (the true sources, when known).

Reading validates everything and fails with one line naming the file, the
track, the stem and the fix; writing is atomic.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ManifestError
from ..files import atomic_write_text, read_json
from .labels import LabelSet, check_labels, vocabulary

FORMAT = "weakmir.manifest"
VERSION = 1
SPLITS = ("train", "valid", "test")
CORRUPTION_KINDS = ("bleed", "wrong_label", "merge")
LABELLINGS = ("full", "stems", "pitch")
OPTIONAL_TRACK_FIELDS = ("features", "f0", "labelling")  # left out of the JSON when null


def _strict(cls, d: dict, where: str):
    if not isinstance(d, dict):
        raise ManifestError(f"{where}: expected an object, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ManifestError(f"{where}: unknown field(s) {sorted(unknown)}; remove them or upgrade weakmir")
    required = {f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    missing = required - set(d)
    if missing:
        raise ManifestError(f"{where}: missing field(s) {sorted(missing)}; add them")


@dataclass
class Stem:
    """One stem of a track (see module docstring for the fields)."""

    id: str
    path: str
    sample_rate: int
    channels: int
    frames: int
    labels: LabelSet
    true_labels: list[str] | None = None
    instruments: list[str] | None = None
    notes: str | None = None
    f0: str | None = None
    corruption: dict | None = None
    clean_path: str | None = None
    hidden: bool = False
    provenance: dict = field(default_factory=dict)

    @property
    def observed(self) -> list[str]:
        """Observed present labels, sorted."""
        return sorted(self.labels.present)

    def to_dict(self, stem_vocab=None) -> dict:
        d = dataclasses.asdict(self)
        d["labels"] = self.labels.to_dict(stem_vocab)
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str) -> "Stem":
        _strict(cls, d, where)
        d = dict(d)
        d["labels"] = LabelSet.from_dict(d["labels"], where)
        return cls(**d)


@dataclass
class Track:
    """One song/clip: mixture, stems, tags, score (see module docstring)."""

    id: str
    split: str
    sample_rate: int
    duration: float
    stems: list[Stem]
    mixture: str | None = None
    score: str | None = None
    tags: LabelSet | None = None
    true_tags: list[str] | None = None
    provenance: dict = field(default_factory=dict)
    features: str | None = None
    f0: str | None = None
    labelling: str | None = None

    def observed_stems(self) -> list[Stem]:
        """Stems as the (possibly noisy) data presents them: hidden ones left out."""
        return [s for s in self.stems if not s.hidden]

    def clean_stems(self) -> list[tuple[Stem, str, list[str]]]:
        """True sources: ``(stem, clean audio path, true labels)`` for every stem, hidden ones too.

        A corrupted stem's clean audio is its ``clean_path`` and its label the
        single label of that source (``provenance["source_label"]``); a stem
        without corruption is its own clean source. Raises when true labels
        are unknown (real data without ground truth).
        """
        out = []
        for s in self.stems:
            if s.true_labels is None:
                raise ManifestError(f"track {self.id!r} stem {s.id!r}: true labels are unknown; the clean view needs a corpus with ground truth")
            source_label = s.provenance.get("source_label")
            labels = [source_label] if source_label else list(s.true_labels)
            out.append((s, s.clean_path or s.path, labels))
        return out

    def to_dict(self, stem_vocab=None, tag_vocab=None) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["stems"] = [s.to_dict(stem_vocab) for s in self.stems]
        d["tags"] = self.tags.to_dict(tag_vocab) if self.tags is not None else None
        for k in OPTIONAL_TRACK_FIELDS:
            if d[k] is None:
                del d[k]  # manifests without them read (and fingerprint) as before
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str) -> "Track":
        _strict(cls, d, where)
        d = dict(d)
        where = f"{where} track {d.get('id')!r}"
        if not isinstance(d["stems"], list):
            raise ManifestError(f"{where}: 'stems' must be a list")
        d["stems"] = [Stem.from_dict(s, f"{where} stem #{i}") for i, s in enumerate(d["stems"])]
        d["tags"] = LabelSet.from_dict(d["tags"], where) if d.get("tags") is not None else None
        return cls(**d)


@dataclass
class Manifest:
    """A corpus: tracks plus the vocabularies their labels use.

    ``root`` is the folder relative paths are resolved against.
    """

    tracks: list[Track]
    root: Path = Path(".")
    stem_vocabulary: str = "stems4"
    tag_vocabulary: str = "openmic"
    name: str = ""
    references_in_place: list[str] = field(default_factory=list)  # folders outside ``root`` its paths may use
    path: Path | None = field(default=None, compare=False, repr=False)  # the file it was read from, if any

    # -- paths ---------------------------------------------------------------
    def resolve(self, path: str | None) -> Path | None:
        """Absolute path of a manifest path (None stays None)."""
        if path is None:
            return None
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    def allowed_roots(self) -> list[Path]:
        """The folders this manifest's paths may lie in: ``root`` and ``references_in_place``."""
        return [Path(os.path.normpath(self.root))] + [
            Path(os.path.normpath(self.resolve(p))) for p in self.references_in_place]

    def outside(self, path: str, roots: list[Path] | None = None) -> bool:
        """True when ``path`` (as written, ``..`` folded) lies outside every one of ``roots`` (default:
        :meth:`allowed_roots`; a caller checking many paths passes them once)."""
        full = Path(os.path.normpath(self.resolve(path)))
        return not any(full == r or r in full.parents for r in (roots or self.allowed_roots()))

    def track(self, track_id: str) -> Track:
        for t in self.tracks:
            if t.id == track_id:
                return t
        raise KeyError(track_id)

    def split(self, name: str) -> list[Track]:
        return [t for t in self.tracks if t.split == name]

    # -- validation ----------------------------------------------------------
    def validate(self, source: str = "manifest", check_files: bool = True) -> "Manifest":
        """Check ids, splits, labels and (optionally) that files exist; raise one line."""
        svocab, tvocab = vocabulary(self.stem_vocabulary), vocabulary(self.tag_vocabulary)
        if not self.tracks:
            raise ManifestError(f"{source}: holds no tracks; build a corpus (weakmir synth) or point to a non-empty manifest")
        seen, roots = set(), self.allowed_roots()
        for t in self.tracks:
            w = f"{source}: track {t.id!r}"
            if not isinstance(t.id, str) or not t.id:
                raise ManifestError(f"{source}: a track has an empty id; give every track a unique id")
            if t.id in seen:
                raise ManifestError(f"{w}: duplicate track id; track ids must be unique")
            seen.add(t.id)
            if t.split not in SPLITS:
                raise ManifestError(f"{w}: unknown split {t.split!r}; use one of {', '.join(SPLITS)}")
            if t.tags is not None:
                t.tags.validate(tvocab, f"{w} tags")
            if t.true_tags is not None:
                check_labels(t.true_tags, tvocab, f"{w} true_tags")
            if not t.stems and t.mixture is None and t.features is None:
                raise ManifestError(f"{w}: has neither stems, a mixture nor features; add one")
            if t.labelling is not None and t.labelling not in LABELLINGS:
                raise ManifestError(f"{w}: unknown labelling {t.labelling!r}; use one of {', '.join(LABELLINGS)} or null")
            sids = set()
            for s in t.stems:
                ws = f"{w} stem {s.id!r}"
                if s.id in sids:
                    raise ManifestError(f"{ws}: duplicate stem id in the track; stem ids must be unique per track")
                sids.add(s.id)
                s.labels.validate(svocab, ws)
                if s.true_labels is not None:
                    check_labels(s.true_labels, svocab, f"{ws} true_labels")
                if s.corruption is not None and s.corruption.get("kind") not in CORRUPTION_KINDS:
                    raise ManifestError(f"{ws}: unknown corruption kind {s.corruption.get('kind')!r}; use one of {', '.join(CORRUPTION_KINDS)}")
                if not all(isinstance(v, int) and v > 0 for v in (s.sample_rate, s.channels, s.frames)):
                    raise ManifestError(f"{ws}: sample_rate, channels and frames must be positive integers "
                                        f"(got {s.sample_rate}, {s.channels}, {s.frames}); re-create the manifest")
            paths = [("mixture", t.mixture), ("score", t.score), ("features", t.features), ("f0", t.f0)]
            for s in t.stems:
                paths += [(f"stem {s.id!r} path", s.path), (f"stem {s.id!r} clean_path", s.clean_path),
                          (f"stem {s.id!r} notes", s.notes), (f"stem {s.id!r} f0", s.f0)]
            for what, p in paths:
                if p is None:
                    continue
                if not isinstance(p, str) or not p:
                    raise ManifestError(f"{w} {what}: {p!r} is not a path; give a file path or null")
                if self.outside(p, roots):
                    raise ManifestError(f"{w} {what}: {p} lies outside the corpus folder {self.root}; move the file "
                                        "into it, or list the folder it lies in under \"references_in_place\"")
                if check_files and not self.resolve(p).is_file():
                    raise ManifestError(f"{w} {what}: file {self.resolve(p)} is missing; restore it or re-create the corpus")
        return self

    # -- IO --------------------------------------------------------------------
    def to_dict(self) -> dict:
        sv, tv = vocabulary(self.stem_vocabulary), vocabulary(self.tag_vocabulary)
        d = {
            "format": FORMAT, "version": VERSION, "name": self.name,
            "stem_vocabulary": self.stem_vocabulary, "tag_vocabulary": self.tag_vocabulary,
            "tracks": [t.to_dict(sv, tv) for t in self.tracks],
        }
        if self.references_in_place:
            d["references_in_place"] = list(self.references_in_place)
        return d

    def write(self, path: str | os.PathLike) -> Path:
        """Write atomically (temp file + rename) as indented JSON."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def from_dict(cls, d: dict, root: Path, source: str = "manifest") -> "Manifest":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ManifestError(f"{source}: not a weakmir manifest (missing \"format\": \"{FORMAT}\"); pass a manifest.json written by weakmir")
        if d.get("version") != VERSION:
            raise ManifestError(f"{source}: manifest version {d.get('version')!r} is not supported (this weakmir reads {VERSION}); re-create it")
        unknown = set(d) - {"format", "version", "name", "stem_vocabulary", "tag_vocabulary", "tracks",
                            "references_in_place"}
        if unknown:
            raise ManifestError(f"{source}: unknown top-level field(s) {sorted(unknown)}; remove them")
        tracks = d.get("tracks")
        if not isinstance(tracks, list):
            raise ManifestError(f"{source}: 'tracks' must be a list")
        in_place = d.get("references_in_place", [])
        if not isinstance(in_place, list) or not all(isinstance(p, str) and p for p in in_place):
            raise ManifestError(f"{source}: 'references_in_place' must be a list of folder paths")
        return cls(
            tracks=[Track.from_dict(t, source) for t in tracks], root=root,
            stem_vocabulary=d.get("stem_vocabulary", "stems4"), tag_vocabulary=d.get("tag_vocabulary", "openmic"),
            name=d.get("name", ""), references_in_place=list(in_place),
        )

    @classmethod
    def read(cls, path: str | os.PathLike, check_files: bool = True) -> "Manifest":
        """Read and validate a manifest file (or a folder holding ``manifest.json``)."""
        path = Path(path)
        if path.is_dir():
            path = path / "manifest.json"
        d = read_json(path, "manifest", "fix or re-create the manifest", error=ManifestError,
                      missing="build one with 'weakmir synth OUT' or check the path")
        m = cls.from_dict(d, path.parent.resolve(), str(path)).validate(str(path), check_files)
        m.path = path
        return m

    # -- summary ---------------------------------------------------------------
    def summary(self) -> dict:
        """Counts a person wants first: tracks, hours, noise by kind, missing-tag rate."""
        tvocab = vocabulary(self.tag_vocabulary)
        n_stems = sum(len(t.stems) for t in self.tracks)
        noise = Counter(s.corruption["kind"] for t in self.tracks for s in t.stems if s.corruption)
        tagged = [t for t in self.tracks if t.tags is not None]
        n_unknown = sum(len(t.tags.unknown(tvocab)) for t in tagged)
        return {
            "name": self.name,
            "tracks": len(self.tracks),
            "splits": dict(Counter(t.split for t in self.tracks)),
            "hours": round(sum(t.duration for t in self.tracks) / 3600.0, 4),
            "stems": n_stems,
            "stems_by_label": dict(Counter(lab for t in self.tracks for s in t.observed_stems() for lab in s.observed)),
            "label_noise": {k: noise.get(k, 0) for k in CORRUPTION_KINDS},
            "label_noise_rate": round(sum(noise.values()) / n_stems, 4) if n_stems else 0.0,
            "missing_tag_rate": round(n_unknown / (len(tagged) * len(tvocab)), 4) if tagged else None,
            "with_score": sum(t.score is not None for t in self.tracks),
            "stems_with_f0": sum(s.f0 is not None for t in self.tracks for s in t.stems),
        }
