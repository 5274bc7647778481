"""Tag audio (or feature files) with a trained weak-mic tagger; compute instance features.

    r = tag_file(tagger, "song.wav", "out/song")
    # out/song/tags.json    {"file", "classes", "clip": {class: p}, "tags": [...], "windows": [...]}
    # out/song/tags.csv     one row per class: class, probability, present
    # out/song/windows.csv  one row per 10-s window x class: start_s, end_s, class, probability, present
    # out/song/attention.png  the attention weights over the instances (where each instrument plays)

A file is cut into the tagger's instances (0.96 s each, :func:`weakmir.models.embedding.instances`) and
embedded by the tagger's frozen embedding network, or read as features (``.npy`` / OpenMIC ``.json``)
when the tagger was trained on provided features. Windows of ``instances`` (10: 9.6 s) step by their
own length, the last one flush with the end (overlapping the one before); a file shorter than one
window has its instances tiled to one. The clip's probability of a class is the maximum over its
windows (a class is in the file when it is in any window); a 10-s clip is one window.

Shapes: features ``(n, dim)``; window probabilities ``(windows, classes)``; attention ``(n, classes)``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import torch

from ..audio.io import load_mono
from ..data.features import SUFFIXES, fit_instances, read_features
from ..errors import WeakmirError
from ..files import atomic_write_bytes, atomic_write_text
from .classify import window_starts


def features_of(tagger, path) -> np.ndarray:
    """Instance features ``(n, dim)`` of ``path`` for ``tagger``: a feature file is read, audio embedded."""
    path = Path(path)
    if path.suffix in SUFFIXES:
        return read_features(path)
    if tagger.embedding is None:
        raise WeakmirError(f"{path}: this tagger was trained on features that came with the data (OpenMIC's "
                           "VGGish), which weakmir cannot compute from audio; pass the clip's feature file "
                           "(.npy or vggish .json)")
    return embed_file(tagger.embedding, path)


def embed_file(embedding, path) -> np.ndarray:
    """``(n, dim)`` features of an audio file (mono, 16 kHz, non-overlapping 0.96 s instances)."""
    from ..models.embedding import SAMPLE_RATE, embed_audio

    return embed_audio(embedding, load_mono(path, SAMPLE_RATE))


def tag_features(tagger, feats: np.ndarray) -> dict:
    """``{"windows": [(first instance, last + 1)], "probs": (windows, classes), "attention": (n, classes) or None}``."""
    n, inst = len(feats), tagger.instances
    if n < inst:
        starts, feats_w = [0], [fit_instances(feats, inst)]
        spans = [(0, n)]
    else:
        starts = window_starts(n, inst, inst)
        feats_w = [feats[s:s + inst] for s in starts]
        spans = [(s, s + inst) for s in starts]
    x = torch.as_tensor(np.stack(feats_w).astype(np.float32))
    tagger.eval()
    with torch.no_grad():
        probs = tagger(x).numpy()
        att = tagger.attention(x)
    attention = None
    if att is not None:
        att = att.numpy()
        acc, cnt = np.zeros((max(n, 1), probs.shape[1])), np.zeros((max(n, 1), 1))
        for (a, b), w in zip(spans, att):
            acc[a:b] += w[:b - a]
            cnt[a:b] += 1
        attention = acc / np.maximum(cnt, 1)
    return {"windows": spans, "probs": probs, "attention": attention}


def tag_file(tagger, path, out_dir, threshold: float = 0.5) -> dict:
    """Tag one file into ``out_dir`` (module docstring); returns the ``tags.json`` record."""
    from ..models.embedding import EXAMPLE, SAMPLE_RATE

    path, out_dir = Path(path), Path(out_dir)
    feats = features_of(tagger, path)
    r = tag_features(tagger, feats)
    sec = EXAMPLE / SAMPLE_RATE
    classes = list(tagger.classes)
    clip = r["probs"].max(axis=0)
    windows = [{"start_s": round(a * sec, 3), "end_s": round(b * sec, 3),
                "probabilities": {c: float(p) for c, p in zip(classes, w)}} for (a, b), w in zip(r["windows"], r["probs"])]
    record = {"file": str(path), "classes": classes, "threshold": threshold,
              "clip": {c: float(p) for c, p in zip(classes, clip)},
              "tags": [c for c, p in zip(classes, clip) if p >= threshold], "windows": windows}
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "tags.json", json.dumps(record, indent=1) + "\n")
    atomic_write_text(out_dir / "tags.csv", _csv(["class", "probability", "present"],
                                                [[c, f"{p:.6f}", int(p >= threshold)] for c, p in zip(classes, clip)]))
    atomic_write_text(out_dir / "windows.csv", _csv(
        ["start_s", "end_s", "class", "probability", "present"],
        [[w["start_s"], w["end_s"], c, f"{w['probabilities'][c]:.6f}", int(w["probabilities"][c] >= threshold)]
         for w in windows for c in classes]))
    if r["attention"] is not None:
        from ..report.figures import attention_map

        show = [k for k, p in enumerate(clip) if p >= threshold] or list(np.argsort(-clip)[:3])
        audio = None
        if path.suffix not in SUFFIXES:
            audio = load_mono(path, SAMPLE_RATE)
        png = attention_map(r["attention"][:, show], [classes[k] for k in show], audio, SAMPLE_RATE,
                            f"{path.name}: attention over instances")
        atomic_write_bytes(out_dir / "attention.png", png)
    return record


def _csv(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def write_table(path, records: list[dict]) -> Path:
    """``OUT/tags.csv``: one row per file x class (file, class, probability, present)."""
    rows = [[r["file"], c, f"{p:.6f}", int(p >= r["threshold"])] for r in records for c, p in r["clip"].items()]
    return atomic_write_text(path, _csv(["file", "class", "probability", "present"], rows))


OUTPUTS = ("tags.json", "tags.csv", "windows.csv", "attention.png")  # under OUT/<name>/


def features_file(embedding, path, out_path) -> np.ndarray:
    """``weakmir features``: the instance features ``(n, dim)`` of an audio file, saved as ``.npy``."""
    f = embed_file(embedding, path)
    buf = io.BytesIO()
    np.save(buf, f.astype(np.float32))
    atomic_write_bytes(out_path, buf.getvalue())
    return f
