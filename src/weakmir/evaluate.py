"""``weakmir evaluate``: score estimates against a manifest of references.

Tasks and the files they read (``ESTS`` is a folder, or a built-in baseline:
``oracle`` = the references themselves, the metric's bound; ``mixture`` = the
track's mixture for every source, separation only, the input SDR):

* ``separation``: references are the clean sources of each track grouped by
  their true stem label (vocals/bass/drums/other: a label's reference is the
  sum of the clean stems that carry it), or with ``by="stem"`` one reference
  per stem (instrument-level, e.g. Bach10); estimates
  ``ESTS/<track>/<label or stem>.wav`` (or .flac). Metrics: museval's BSS Eval v4 (1 s windows, median over
  frames), SI-SDR and NSDR over the whole track. Aggregate: median over tracks
  per label (museval/SiSEC), and their mean over labels (``avg``).
* ``pitch``: references are the stems with f0; estimates
  ``ESTS/<track>/<stem>.csv`` in weakmir's f0 CSV (``time_s,frequency_hz,voicing``).
  mir_eval.melody metrics; aggregate: mean over stems.
* ``transcription``: references are stems' notes; estimates
  ``ESTS/<track>/<stem>.csv`` (notes CSV) or ``.mid`` (all notes of the file).
  mir_eval.transcription metrics + note accuracy; aggregate: mean over stems.
* ``tagging``: references are track tags (true tags when known, else the
  observed ones with unknowns masked); estimates ``ESTS`` = a JSON file
  ``{track_id: {class: score}}``. Classification metrics (threshold 0.5).

Writes ``OUT/metrics.json`` (per track and aggregate; non-finite numbers as the
strings "inf", "-inf", "nan") and ``OUT/metrics.md`` (Markdown tables),
atomically. A missing or length-mismatched estimate is a one-line error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .audio.io import load, resample, to_channels
from .data.labels import OPENMIC, STEMS4
from .data.manifest import Manifest
from .data.notes import read_f0, read_notes
from .errors import WeakmirError, notice
from .files import atomic_write_json, atomic_write_text, check_output_folder
from .inputs import audio_files, f0_estimate, notes_estimate, tag_scores
from .report.page import markdown_table

TASKS = ("separation", "pitch", "transcription", "tagging")
# the file names an estimate may have, ESTS/<track>/<name><ext>, first one found wins
EXTENSIONS = {"separation": (".wav", ".flac", ".ogg", ".mp3"), "pitch": (".csv", ".f0.csv"),
              "transcription": (".csv", ".notes.csv", ".mid")}
BASELINES = ("oracle", "mixture")


def _est_file(ests: Path, track: str, name: str, exts) -> Path:
    for ext in exts:
        p = ests / track / f"{name}{ext}"
        if p.exists():
            return p
    raise WeakmirError(f"{ests / track / (name + exts[0])}: estimate missing (looked for {', '.join(exts)}); "
                       f"write one file per {'source' if '.wav' in exts else 'stem'} under ESTS/<track>/")


def reference_names(track, by: str) -> list[tuple[str, str]]:
    """``(reference name, clean audio path)`` of each clean stem a reference sums: its stem id
    (``by="stem"``) or its single true label (``by="label"``; multi-label sources are left out)."""
    out = []
    for stem, path, labels in track.clean_stems():
        if by == "stem":
            out.append((stem.id, path))
        elif len(labels) == 1:
            out.append((labels[0], path))
    return out


def references(m: Manifest, track, by: str) -> dict[str, np.ndarray]:
    """Clean references ``(channels, time)``: per true stem label (``by="label"``) or per stem (``by="stem"``)."""
    refs: dict[str, np.ndarray] = {}
    for key, path in reference_names(track, by):
        x, _ = load(m.resolve(path), sample_rate=track.sample_rate)
        refs[key] = refs.get(key, 0) + x
    return {k: refs[k] for k in STEMS4 if k in refs} if by == "label" else refs


def _separation(m: Manifest, track, ests, pad: bool, by: str = "label") -> dict:
    from .metrics import separation as sep

    refs = references(m, track, by)
    if not refs:
        raise WeakmirError(f"track {track.id!r}: no stem with a single true label to evaluate against")
    names = list(refs)
    T = max(r.shape[1] for r in refs.values())
    C = max(r.shape[0] for r in refs.values())
    ref = np.stack([np.pad(to_channels(refs[n], C, path=f"reference {n!r}"), ((0, 0), (0, T - refs[n].shape[1])))
                    for n in names])
    mixture = None
    if track.mixture:
        mixture, _ = load(m.resolve(track.mixture), sample_rate=track.sample_rate, channels=C)
        mixture = sep.pad_or_truncate(ref[0], mixture)
    if ests == "oracle":
        est = ref.copy()
    elif ests == "mixture":
        if mixture is None:
            raise WeakmirError(f"track {track.id!r} has no mixture; the 'mixture' baseline needs one")
        est = np.stack([mixture] * len(names))
    else:
        est = []
        for n in names:
            p = _est_file(ests, track.id, n, EXTENSIONS["separation"])  # n: label or stem id
            x, sr = load(p)
            if sr != track.sample_rate:
                x = resample(x, sr, track.sample_rate)
            x = to_channels(x, C, path=p)
            if x.shape[1] != T and not pad:
                raise WeakmirError(f"{p}: {x.shape[1]} samples but the reference has {T}; trim or pad it, or pass --pad")
            if x.shape[1] != T:
                notice(f"{p}: {x.shape[1]} samples, {'padded' if x.shape[1] < T else 'trimmed'} to the reference's {T} "
                       "(--pad)")
            est.append(sep.pad_or_truncate(ref[0], x))
        est = np.stack(est)
    res = sep.evaluate_track(ref, est, track.sample_rate, names=names)
    si = sep.si_sdr(ref.reshape(len(names), -1), est.reshape(len(names), -1))
    out = {}
    for i, n in enumerate(names):
        out[n] = {k: res[n][k] for k in ("SDR", "ISR", "SIR", "SAR")}
        out[n]["SI-SDR"] = float(si[i])
        if mixture is not None:
            out[n]["SI-SDR_mixture"] = float(sep.si_sdr(ref[i].ravel(), mixture.ravel()))
        out[n]["frames"] = res[n]["frames"]["SDR"]
    return out


def scored_stems(task: str, track) -> list:
    """The stems of ``track`` that ``task`` (pitch, transcription) scores: visible stems with f0, or with
    notes and not drums."""
    if task == "pitch":
        return [s for s in track.stems if s.f0 is not None and not s.hidden]
    return [s for s in track.stems if s.notes is not None and not s.hidden and not s.provenance.get("is_drum")]


def _pitch(m, track, ests, **_):
    from .metrics import pitch

    out = {}
    for s in scored_stems("pitch", track):
        rt, rf, rv = read_f0(m.resolve(s.f0))
        if ests == "oracle":
            et, ef, ev = rt, rf, rv
        else:
            et, ef, ev = f0_estimate(_est_file(ests, track.id, s.id, EXTENSIONS["pitch"]))
        out[s.id] = pitch.evaluate(rt, rf, et, ef, ref_voicing=rv, est_voicing=ev)
    return out


def _transcription(m, track, ests, **_):
    from .metrics import transcription as tr

    out = {}
    for s in scored_stems("transcription", track):
        ref = read_notes(m.resolve(s.notes))
        if ests == "oracle":
            est = ref
        else:
            est = notes_estimate(_est_file(ests, track.id, s.id, EXTENSIONS["transcription"]))
        out[s.id] = tr.evaluate(ref, est)
    return out


def _tagging(m: Manifest, tracks, ests) -> tuple[dict, dict]:
    from .metrics import classification as cl

    if ests != "oracle":
        scores = tag_scores(ests)
    y, s, mask, per = [], [], [], {}
    for t in tracks:
        if t.true_tags is not None:
            truth = {c: (1 if c in t.true_tags else 0) for c in OPENMIC}
        elif t.tags is not None:
            truth = {c: t.tags.state(c) for c in OPENMIC}
        else:
            continue
        if ests == "oracle":
            est = {c: float(v or 0) for c, v in truth.items()}
        else:
            if t.id not in scores:
                raise WeakmirError(f"{ests}: no scores for track {t.id!r}; add it to the JSON")
            est = scores[t.id]
            unknown = set(est) - set(OPENMIC)
            if unknown:
                raise WeakmirError(f"{ests}: track {t.id!r} has unknown classes {sorted(unknown)}; use OpenMIC names")
        y.append([truth[c] or 0 for c in OPENMIC])
        mask.append([truth[c] is not None for c in OPENMIC])
        s.append([float(est.get(c, 0.0)) for c in OPENMIC])
        per[t.id] = {"true": [c for c in OPENMIC if truth[c] == 1]}
    if not y:
        raise WeakmirError("no track has tags to evaluate; the manifest needs tags or true_tags")
    res = cl.evaluate(np.array(y), np.array(s), mask=np.array(mask), classes=OPENMIC)
    return per, res


def check_estimates(task: str, m: Manifest, tracks, ests: Path | str, by: str = "label") -> None:
    """Before any scoring: the reference audio of separation is mono or stereo and decodes, and every
    estimate file the tracks need (``ests`` a folder; a baseline name has none) exists and reads (audio
    checked by :func:`weakmir.inputs.audio_files`, f0 / notes parsed); one line naming the first bad one."""
    read = {"pitch": f0_estimate, "transcription": notes_estimate}
    for t in tracks:
        if task == "separation":
            names = reference_names(t, by)
            audio_files([m.resolve(p) for _, p in names], max_channels=2)
            if isinstance(ests, Path):
                audio_files([_est_file(ests, t.id, n, EXTENSIONS[task]) for n in dict.fromkeys(n for n, _ in names)],
                            sample_rate=t.sample_rate, max_channels=2)
        else:
            for s in scored_stems(task, t):
                read[task](_est_file(ests, t.id, s.id, EXTENSIONS[task]))


def _mean(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))]
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def evaluate(task: str, refs: str | Path, ests: str | Path, out: str | Path, split: str | None = None,
             pad: bool = False, progress: bool = True, by: str = "label", overwrite: bool = False) -> dict:
    """Run one task; writes ``out/metrics.json`` and ``out/metrics.md``; returns the results dict.

    Everything is checked before any scoring: the manifest, ``out`` (a writable folder that would not
    replace an input unless ``overwrite``) and every estimate file (:func:`check_estimates`)."""
    if task not in TASKS:
        raise WeakmirError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    m = Manifest.read(refs)
    tracks = [t for t in m.tracks if split is None or t.split == split]
    if not tracks:
        raise WeakmirError(f"{refs}: no tracks in split {split!r}; choose another --split")
    if str(ests) in BASELINES:
        est_arg = str(ests)
        if est_arg == "mixture" and task != "separation":
            raise WeakmirError("the 'mixture' baseline only applies to --task separation")
    else:
        est_arg = Path(ests)
        if not est_arg.exists():
            raise WeakmirError(f"{est_arg}: no such estimates folder or file; check the path")
    check_output_folder(out, inputs=[m.path] + ([] if isinstance(est_arg, str) else [est_arg]),
                        writes=("metrics.json", "metrics.md"), overwrite=overwrite, option="--out")
    if task != "tagging" and (isinstance(est_arg, Path) or task == "separation"):
        check_estimates(task, m, tracks, est_arg, by)
    results: dict = {"task": task, "references": str(refs), "estimates": str(ests), "split": split, "tracks": {}}
    if task == "tagging":
        per, res = _tagging(m, tracks, est_arg)
        results["tracks"], results["aggregate"] = per, res
    else:
        from tqdm import tqdm

        fn = {"separation": _separation, "pitch": _pitch, "transcription": _transcription}[task]
        for t in tqdm(tracks, desc=f"evaluate {task}", unit="track", disable=not progress, leave=False):
            results["tracks"][t.id] = fn(m, t, est_arg, pad=pad, by=by)
        results["aggregate"] = _aggregate(task, results["tracks"])
    out = Path(out)
    atomic_write_json(out / "metrics.json", results)
    atomic_write_text(out / "metrics.md", report_markdown(results))
    return results


def _aggregate(task: str, per_track: dict) -> dict:
    from .metrics.separation import aggregate as median_over_tracks

    agg: dict = {}
    if task == "separation":
        names = [n for v in per_track.values() for n in v]
        labels = [lab for lab in STEMS4 if lab in names] + [n for n in dict.fromkeys(names) if n not in STEMS4]
        for lab in labels:
            vals = [v[lab] for v in per_track.values() if lab in v]
            agg[lab] = {k: median_over_tracks([x[k] for x in vals]) for k in ("SDR", "ISR", "SIR", "SAR", "SI-SDR")}
            if all("SI-SDR_mixture" in x for x in vals):
                agg[lab]["SI-SDR_mixture"] = median_over_tracks([x["SI-SDR_mixture"] for x in vals])
        if labels:
            agg["avg"] = {k: float(np.mean([agg[lab][k] for lab in labels])) for k in agg[labels[0]]}
        return agg
    rows = [v for tr in per_track.values() for v in tr.values()]
    if rows:
        agg["mean"] = _mean(rows)
        agg["stems"] = len(rows)
    return agg


def _table(header: list[str], rows: list[list]) -> str:
    return markdown_table(header, rows, digits=3) + "\n"


def report_markdown(results: dict) -> str:
    """A Markdown page: aggregate table first, then one table per track."""
    task = results["task"]
    md = [f"# weakmir evaluate: {task}\n", f"references `{results['references']}`, estimates `{results['estimates']}`\n"]
    agg = results["aggregate"]
    if task == "tagging":
        md.append("## Overall\n")
        md.append(_table(["metric", "value"], [[k, v] for k, v in agg["overall"].items()]))
        md.append("\n## Per class\n")
        keys = ["accuracy", "precision", "recall", "f1", "f1_macro", "auroc", "support"]
        md.append(_table(["class"] + keys, [[c] + [d[k] for k in keys] for c, d in agg["per_class"].items()]))
        return "\n".join(md)
    if task == "separation":
        keys = ["SDR", "SIR", "ISR", "SAR", "SI-SDR"]
        md.append("## Aggregate (median over tracks; avg = mean over sources)\n")
        md.append(_table(["source"] + keys, [[k] + [v.get(m) for m in keys] for k, v in agg.items()]))
        for tid, per in results["tracks"].items():
            md.append(f"\n## {tid}\n")
            md.append(_table(["source"] + keys, [[k] + [v[m] for m in keys] for k, v in per.items()]))
        return "\n".join(md)
    if agg:
        keys = list(agg["mean"])
        md.append(f"## Mean over {agg['stems']} stems\n")
        md.append(_table(["metric", "value"], [[k, agg["mean"][k]] for k in keys]))
        shown = keys[:6]
        for tid, per in results["tracks"].items():
            md.append(f"\n## {tid}\n")
            md.append(_table(["stem"] + shown, [[s] + [v[k] for k in shown] for s, v in per.items()]))
    return "\n".join(md)
