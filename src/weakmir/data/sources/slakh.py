"""Slakh2100 (Manilow, Wichern, Seetharaman, Le Roux — WASPAA 2019): MIDI-rendered multitracks.

Citation: E. Manilow et al., "Cutting music source separation some Slakh: a
dataset to study the impact of training data quality and quantity", WASPAA
2019. Licence: CC BY 4.0.

Expected tree (``slakh2100_flac_redux`` or the original ``slakh2100_flac``)::

    ROOT/
      train/ validation/ test/ [omitted/]
        Track00001/
          mix.flac                  the mixture of every rendered stem
          metadata.yaml             per stem: inst_class, program_num, is_drum, audio_rendered, ...
          all_src.mid               the whole score
          MIDI/S00.mid ...          one MIDI file per stem (the score of that stem, aligned)
          stems/S00.flac ...        one audio file per rendered stem

Splits: the folder a track sits in (``validation`` -> ``valid``; ``omitted``
is skipped), or a JSON file ``{"train": [ids], "validation": [ids], "test":
[ids]}`` — the Slakh2100-split2 lists (score-supervised_hung2021 §3.1) are
of this form; tracks in no list are skipped.

Instruments: a stem's instrument is the General MIDI program's
(:func:`weakmir.data.labels.gm_instrument`, drums for ``is_drum``), its
stems4 label follows from it. ``keep=("piano", "distorted_guitar", "bass")``
keeps only those instruments — the paper's subset — and writes the mixture of
the kept stems (mono float wav, the stems' rate) to ``OUT/audio/<split>/<track>.wav``;
tracks with none of them are skipped. Notes (onset, offset, pitch, velocity)
are read from each stem's MIDI file with pretty_midi.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...audio.io import check, info, save
from ...audio.io import load as load_audio
from ...errors import WeakmirError
from ..labels import STEMS4, LabelSet, gm_instrument, instrument_stem
from ..manifest import Manifest, Stem, Track
from ..notes import write_notes

SPLITS = {"train": "train", "validation": "valid", "test": "test"}


def _metadata(path: Path) -> dict:
    import yaml

    try:
        meta = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise WeakmirError(f"{path}: cannot read Slakh metadata ({e}); restore the track's metadata.yaml") from e
    if not isinstance(meta, dict) or not isinstance(meta.get("stems"), dict):
        raise WeakmirError(f"{path}: no 'stems' mapping; not a Slakh metadata.yaml")
    return meta


def _midi_notes(path: Path) -> np.ndarray:
    import pretty_midi

    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as e:  # pretty_midi raises many kinds on a corrupt file
        raise WeakmirError(f"{path}: cannot read MIDI ({e}); restore it from the Slakh archive") from e
    rows = [(n.start, n.end, n.pitch, n.velocity) for inst in pm.instruments for n in inst.notes]
    return np.array(sorted(rows), dtype=float).reshape(-1, 4)


def load(root: str | Path, out: str | Path, keep=None, splits_file: str | Path | None = None) -> Manifest:
    """Build ``out/manifest.json`` for a Slakh2100 tree (see module docstring)."""
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise WeakmirError(f"{root}: no such folder; point to the Slakh2100 root (holding train/ validation/ test/)")
    assign = None
    if splits_file is not None:
        try:
            lists = json.loads(Path(splits_file).read_text())
            assign = {str(tid): SPLITS[name] for name, ids in lists.items() for tid in ids}
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise WeakmirError(f"{splits_file}: not a split list ({{\"train\": [...], \"validation\": [...], "
                               f"\"test\": [...]}}): {e}") from e
    folders = sorted(p for d in root.iterdir() if d.is_dir() and d.name in (*SPLITS, "omitted")
                     for p in d.iterdir() if p.is_dir() and (p / "metadata.yaml").exists())
    if not folders:
        raise WeakmirError(f"{root}: no Slakh tracks (train/TrackNNNNN/metadata.yaml) found; check the path")
    keep = tuple(keep) if keep else None
    tracks = []
    for folder in folders:
        split = assign.get(folder.name) if assign is not None else SPLITS.get(folder.parent.name)
        if split is None:
            continue
        meta = _metadata(folder / "metadata.yaml")
        stems, kept_audio = [], []
        for sid, sm in sorted(meta["stems"].items()):
            if not sm.get("audio_rendered", True):
                continue
            is_drum = bool(sm.get("is_drum", False))
            inst = gm_instrument(int(sm.get("program_num", 0)), is_drum=is_drum)
            if keep is not None and inst not in keep:
                continue
            audio = folder / meta.get("audio_dir", "stems") / f"{sid}.flac"
            if not audio.exists():
                raise WeakmirError(f"{audio}: missing from the Slakh layout; restore it or mark the stem "
                                   "audio_rendered: false")
            a = check(audio, max_channels=2)
            sr, ch, frames = a.sample_rate, a.channels, a.frames
            notes_path = None
            midi = folder / meta.get("midi_dir", "MIDI") / f"{sid}.mid"
            if midi.exists() and not is_drum:
                notes_path = out / "annotations" / folder.name / f"{sid}.notes.csv"
                write_notes(notes_path, _midi_notes(midi))
            label = instrument_stem(inst)
            stems.append(Stem(
                id=sid, path=str(audio.resolve()), sample_rate=sr, channels=ch, frames=frames,
                labels=LabelSet.complete([label], STEMS4), true_labels=[label], instruments=[inst],
                notes=str(notes_path.relative_to(out)) if notes_path else None,
                provenance={"dataset": "slakh2100", "inst_class": sm.get("inst_class"),
                            "program": int(sm.get("program_num", 0)), "is_drum": is_drum,
                            "midi_program_name": sm.get("midi_program_name")},
            ))
            if keep is not None:
                kept_audio.append(load_audio(audio)[0])
        if not stems:
            continue
        mixture = folder / "mix.flac"
        if keep is not None:
            n = max(a.shape[1] for a in kept_audio)
            mix = np.zeros((1, n), np.float32)
            for a in kept_audio:
                mix[:, :a.shape[1]] += a.mean(axis=0, keepdims=True)
            mixture = save(out / "audio" / split / f"{folder.name}.wav", mix, stems[0].sample_rate, subtype="FLOAT")
        elif not mixture.exists():
            raise WeakmirError(f"{mixture}: missing from the Slakh layout; restore it")
        sr, _, frames = info(mixture)
        tracks.append(Track(id=folder.name, split=split, sample_rate=sr, duration=frames / sr, stems=stems,
                            mixture=str(Path(mixture).resolve()),
                            provenance={"dataset": "slakh2100", "root": str(root.resolve()),
                                        "uuid": meta.get("UUID"), "kept": list(keep) if keep else None}))
    if not tracks:
        raise WeakmirError(f"{root}: no track has {', '.join(keep) if keep else 'rendered stems'}; check --keep")
    m = Manifest(tracks=tracks, root=out.resolve(), name="Slakh2100", references_in_place=[str(root.resolve())])
    m.write(out / "manifest.json")
    return m


__all__ = ["load", "SPLITS"]
