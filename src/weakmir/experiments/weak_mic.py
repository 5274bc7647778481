"""``weakmir experiment weak-mic``: Tables 3.1, 3.2, 4.2, 5.1 and Figures 3.4, 3.5, 5.3 of
weak-mic_gururani_thesis on the openmic synth corpus (or ``--openmic DIR``, the real OpenMIC-2018).

The losses, steps and models are :mod:`weakmir.methods.weak_mic` and :mod:`weakmir.models.mil`; this
module builds the corpora, the instance features, trains every tagger on
:class:`weakmir.experiments.stages.StageRunner` (``DIR/checkpoints/<row>_seed<k>.ckpt``, each a
:class:`weakmir.models.mil.Tagger` that ``weakmir tag`` reads) and scores them.

* **Corpora** (synth): ``DIR/corpus/tagging`` (``weakmir synth --preset openmic``, 10-s clips, the
  recipe's ``tracks``, seed ``corpus_seed``) and ``DIR/corpus/embedding`` (the same generator with the
  embedding's own seed: disjoint clips) whose strong window labels pretrain the embedding network
  (``DIR/checkpoints/embedding.ckpt``, then frozen). With ``--openmic``, the dataset's VGGish features
  are used and nothing is pretrained.
* **Scores**: precision, recall, F1 (each the macro over the positive and negative class, then the
  mean over the classes, §2.3.2), AUROC and mAP on the test split at threshold 0.5, twice: against the
  observed test tags (as OpenMIC is scored) and, on the synth corpus, against the true full labels.
  Mean ± std over the recipe's seeds. Model selection used the valid split only.
* **Rows**: Table 3.1 RF_BR, FC, FC_T, RNN, ATT; BCE with missing labels taken as negatives; Table 3.2
  BL, BL FT, BL FT final; Table 4.2 DGM vs FC vs ATT; Table 5.1 MT vs ATT; Figure 5.3 MT vs ATT with
  1-32 % of the training clips fully labelled and the rest unlabelled (§5.5, here on the synth corpus,
  where labels can be removed at will; the thesis used the MSD).
* **Figure 5.3 on its own, larger corpus** (``ratio.tracks``, ``ratio.corpus_seed``: §5.5 ran on the
  MSD, larger than OpenMIC; 0 divides the tagging corpus's training split instead). On the tagging
  corpus's 640 training clips Figure 5.3 does not hold (valid split, 3 seeds, F1 / AUROC at
  1 / 2 / 4 %): ATT 51.7 / 54.5 / 57.3 F1, 60.7 / 65.1 / 68.4 AUROC; MT with β = 3: 49.7 / 54.7 / 58.5
  F1, 56.6 / 61.7 / 67.6 AUROC. The consistency term is not what is missing there: β = 0 gives the same
  MT (49.6 / 55.6 / 57.0), β = 16 / 64 lower it (AUROC 55.4 / 52.6 at 1 %), and neither EMA 0.9-0.99,
  the ATT's learning rate, 25 instead of 60 epochs, Gaussian input noise (T(x) of eq. 5.1, σ 0.5 / 1)
  nor the labelled and unlabelled halves through the model apart (§5.5.2) lifts MT above ATT at 1 %:
  1 % is 6 clips (the thesis's 1 % of the MSD is ~2 000), which MT's student sees in every step and
  memorises (training BCE_p 0.03). The quick recipe therefore gives Figure 5.3 a 3 000-clip corpus
  (seed 2000; 2 400 training clips: 1 % = 24), chosen on its valid split, 3 seeds, F1 MT − ATT (std) at
  1 / 2 / 4 %: β 16 (the thesis's), MT 60 epochs, ATT 200 (the thesis's) +1.62 (0.94) / +3.53 (0.57) /
  +2.17 (0.72), AUROC −3.3 / −3.3 / −0.6 (the quick recipe's setting); β 3 and ATT 100 epochs +0.43 at
  4 % (the ATT underfits: 100 steps); β 32 +1.20 (1.53) at 4 %; MT 40 epochs +1.00 (1.12) / +0.95
  (0.89) / +0.41 (0.59); a 2 000-clip corpus with 40 epochs +2.26 at 4 % but −0.04 at 1 %. These were
  measured with torch's own dropout, before :class:`weakmir.models.mil.Dropout` (same distribution,
  other random draws) made the 18 MT runs cheap enough (~30 ms a step) for the quick budget. The test
  split, scored once by the quick run: README, weak-mic section.

``DIR/results.json`` ``summary`` (percent, against the true labels): ``f1_att``, ``f1_fc_t``, ``f1_fc``,
``f1_rnn``, ``f1_rf``, ``f1_mt``, ``f1_dgm``, ``f1_missing_as_negative`` (each ``{"mean", "std"}``),
``auroc_att``, ``map_att``, ``mt_gain_at_4pct``; ``DIR/report.html``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..config import load_recipe
from ..data.labels import OPENMIC
from ..data.manifest import Manifest
from ..errors import WeakmirError
from ..files import atomic_write_json, check_output_folder
from ..methods.weak_mic import (Bags, EmbeddingConfig, PairedBags, TagConfig, clip_features, embedding_data,
                                labels_of, make_tagger, predict, pretrain_embedding, standardisation, train_tagger)
from ..train.engine import check_lr_schedule, global_rank
from .stages import Engine, StageRunner, fingerprint, run_tasks

METHOD = "weak-mic"
MODELS = ("att", "fc_t", "fc", "rnn", "rf", "mt", "dgm")
NAMES = {"rf": "RF_BR", "fc": "FC", "fc_t": "FC_T", "rnn": "RNN", "att": "ATT", "mt": "MT", "dgm": "DGM",
         "missing_negative": "ATT, missing as negative", "bl": "BL", "bl_ft": "BL FT", "bl_ft_final": "BL FT final"}


@dataclass(frozen=True)
class RatioConfig:
    """Figure 5.3 (§5.5): MT vs ATT with a fraction of the training clips fully labelled."""

    ratios: tuple = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32)
    tracks: int = 0  # clips of Figure 5.3's own synth corpus (0: the tagging corpus's training split is divided)
    corpus_seed: int = 2000  # its synth seed (disjoint from the tagging and the embedding corpora)
    seeds: int = 3
    mt_epochs: int = 100  # epochs of the unlabelled subset
    att_epochs: int = 200  # epochs of the labelled subset
    mt_weight: float = 16.0  # β (the thesis's grid: 16, 32, 64)
    dropout: float = 0.5
    mt_schedule: dict = field(default_factory=lambda: {"up": 10, "down": 50, "epochs": 100})
    att_schedule: dict = field(default_factory=lambda: {"up": 20, "down": 100, "epochs": 200})


@dataclass(frozen=True)
class WeakMicPreset:
    """One run of the experiment (a recipe): corpus, embedding, taggers, seeds."""

    tracks: int = 800  # clips of the tagging corpus (split 80/10/10)
    corpus_seed: int = 0
    seconds: float = 10.0
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    tag: TagConfig = field(default_factory=TagConfig)
    mt_epochs: int = 200  # §5.4.2
    dgm_epochs: int = 100  # §4.4.1 (epochs of the unlabelled data)
    seeds: int = 5
    balanced_seeds: int = 5  # Table 3.2
    tables: tuple = ("3.1", "3.2", "4.2", "5.1", "5.3")
    ratio: RatioConfig = field(default_factory=RatioConfig)
    threshold: float = 0.5
    workers: int = 2


def recipe(name: str = "quick", sets=()) -> tuple:
    """``(WeakMicPreset, resolved dict)`` of the recipe ``name`` with the ``--set`` overrides ``sets``."""
    P, resolved, _ = load_recipe(WeakMicPreset, METHOD, name, sets)
    for key, schedule in (("tag.lr_schedule", P.tag.lr_schedule), ("ratio.mt_schedule", P.ratio.mt_schedule),
                          ("ratio.att_schedule", P.ratio.att_schedule)):
        check_lr_schedule(schedule, f"recipe: {key}")
    return P, resolved


# -- features -----------------------------------------------------------------------------------------------

def embedding_for(P: WeakMicPreset, runner: StageRunner, corpus_dir: Path, log, progress: bool):
    """The frozen embedding network: ``P.embedding.checkpoint`` when given, else pretrained (a stage of
    ``runner``) on its own synth corpus in ``corpus_dir`` (disjoint from the tagging corpus: its own seed).
    Returns ``(model, kwargs, what it was trained on)``."""
    from ..data.synth.build import SynthConfig, build_corpus
    from ..inputs import checkpoint as read_checkpoint

    E = P.embedding
    if E.checkpoint:
        model, meta = read_checkpoint(E.checkpoint, "embedding", "train weak-mic")
        model.eval()
        return model, model.kwargs(), meta.get("config", {}).get("trained_on", f"{E.checkpoint} (given)")
    m, _ = build_corpus(corpus_dir, SynthConfig(preset="openmic", tracks=E.tracks, seconds=P.seconds,
                                                sample_rate=16000, seed=E.seed), progress=progress)
    train, valid = embedding_data(m, OPENMIC, progress)
    what = (f"weakmir synth --preset openmic --tracks {E.tracks} --seed {E.seed} (16 kHz, 10-s clips; "
            f"{len(train)} windows of 0.96 s with strong labels from the stems' notes)")
    log(f"embedding: pretrained on {what}")
    model = pretrain_embedding(runner, E, train, valid, len(OPENMIC))
    return model, model.kwargs(), what


def features_of(manifest: Manifest, embedding, cache: Path, key: str, progress: bool) -> dict:
    """``{track id: (instances, dim)}`` of every track of ``manifest`` (:func:`clip_features`), cached in
    ``cache`` (``.npz``) under ``key`` (the embedding and the manifest)."""
    from ..files import atomic_path

    if cache.exists():
        try:
            z = np.load(cache, allow_pickle=False)
            if str(z["key"]) == key:
                return dict(zip(z["ids"].tolist(), z["x"]))
        except Exception:  # noqa: BLE001  (a damaged cache is recomputed)
            pass
    x = clip_features(manifest, manifest.tracks, embedding, progress=progress)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, x=x, ids=np.array([t.id for t in manifest.tracks]), key=np.array(key))
    return dict(zip([t.id for t in manifest.tracks], x))


@dataclass
class Data:
    """The tagging corpus as arrays: per split raw bags ``x`` ``(n, 10, 128)``, observed ``y`` / ``mask`` and
    ``true`` labels ``(n, 20)`` (None without ground truth), plus the training standardisation."""

    splits: dict
    mean: np.ndarray
    std: np.ndarray
    classes: tuple = OPENMIC
    embedding_kwargs: dict | None = None  # the frozen embedding the features came from (None: provided features)
    embedding_state: dict | None = None  # its weights, copied into every tagger
    features: str = "embedding"  # or "provided"
    ratio: "Data | None" = None  # Figure 5.3's own corpus (``ratio.tracks``), None: this one's training split

    def tagger(self, cfg: TagConfig, seed: int):
        """An untrained tagger for ``cfg`` holding this data's standardisation and frozen embedding."""
        t = make_tagger(cfg, self.classes, self.mean, self.std, self.embedding_kwargs, seed=seed,
                        features=self.features)
        if t.embedding is not None and self.embedding_state is not None:
            t.embedding.load_state_dict(self.embedding_state)
        return t

    @classmethod
    def build(cls, manifest: Manifest, feats: dict, classes=OPENMIC, embedding=None, embedding_kwargs=None,
              features: str = "embedding") -> "Data":
        """The arrays of ``manifest``'s splits from ``feats``; ``embedding`` (the frozen network the features
        came from, None for provided features) is copied in as ``embedding_state``."""
        splits = {}
        for split in ("train", "valid", "test"):
            tracks = manifest.split(split)
            if not tracks:
                continue
            y, m, true = labels_of(tracks, classes)
            splits[split] = {"x": np.stack([feats[t.id] for t in tracks]), "y": y, "mask": m, "true": true,
                             "ids": [t.id for t in tracks]}
        mean, std = standardisation(splits["train"]["x"])
        state = {k: v.clone() for k, v in embedding.state_dict().items()} if embedding is not None else None
        return cls(splits, mean, std, tuple(classes), embedding_kwargs, state, features)

    def bags(self, split: str, labels: str = "observed") -> Bags:
        s = self.splits[split]
        z = (s["x"] - self.mean) / self.std
        if labels == "true":
            return Bags(z, s["true"], np.ones_like(s["true"]))
        return Bags(z, s["y"], s["mask"])

    def ratio_sets(self, ratio: float, seed: int):
        """§5.5: a random ``ratio`` of the training clips with their true (full) labels, the rest unlabelled:
        ``(labelled Bags, PairedBags)``."""
        s = self.splits["train"]
        n = len(s["x"])
        k = max(1, int(round(ratio * n)))
        pick = np.random.default_rng([seed, int(round(ratio * 1e4))]).permutation(n)
        lab, unl = pick[:k], pick[k:]
        z = (s["x"] - self.mean) / self.std
        labelled = Bags(z[lab], s["true"][lab], np.ones_like(s["true"][lab]))
        return labelled, PairedBags(labelled, z[unl], seed)


# -- stages ---------------------------------------------------------------------------------------------------

def row_config(P: WeakMicPreset, row: str) -> TagConfig:
    """The :class:`TagConfig` of a table row (``att``, ``fc``, ..., ``missing_negative``, ``bl``, ``bl_ft``,
    ``bl_ft_final``)."""
    T = P.tag
    if row in ("missing_negative",):
        return replace(T, model="att", loss="missing_negative")
    if row.startswith("bl"):
        return replace(T, model="att", loss="balanced")
    if row == "mt":
        return replace(T, model="mt", epochs=P.mt_epochs, lr_schedule=dict(T.lr_schedule) or {"every": 30, "factor": 0.5})
    if row == "dgm":
        return replace(T, model="dgm", epochs=P.dgm_epochs)
    return replace(T, model=row)


def stage_name(row: str, seed: int) -> str:
    """``att_seed0``, ``ratio_mt_0.04_seed1``: a row's stage (and checkpoint file) name."""
    return f"{row.replace(':', '_')}_seed{seed}"


def train_row(runner: StageRunner, P: WeakMicPreset, D: Data, row: str, seed: int):
    """Train (or load) one row's tagger for ``seed`` (a stage ``<row>_seed<k>``); BL FT / BL FT final start
    from the ATT of that seed; ``ratio:<mt|att>:<r>`` is a Figure 5.3 point."""
    if row.startswith("ratio"):
        _, kind, r = row.split(":")
        R, D = P.ratio, D.ratio or D
        labelled, paired = D.ratio_sets(float(r), seed)
        if kind == "mt":
            cfg = replace(P.tag, model="mt", epochs=R.mt_epochs, mt_weight=R.mt_weight, dropout=R.dropout,
                          lr_schedule=dict(R.mt_schedule), mt_rampup_epochs=float(R.mt_schedule.get("up", 10)))
        else:
            cfg = replace(P.tag, model="att", epochs=R.att_epochs, dropout=R.dropout, lr_schedule=dict(R.att_schedule))
        return train_tagger(runner, stage_name(row, seed), cfg, paired if kind == "mt" else labelled,
                            D.bags("valid"), D.tagger(cfg, seed), seed)
    cfg = row_config(P, row)
    init = train_row(runner, P, D, "att", seed) if row in ("bl_ft", "bl_ft_final") else None
    return train_tagger(runner, stage_name(row, seed), cfg, D.bags("train"), D.bags("valid"), D.tagger(cfg, seed),
                        seed, init=init, freeze_embedding=row == "bl_ft_final")


def rows_of(P: WeakMicPreset) -> list[tuple[str, int]]:
    """Every ``(row, seed)`` the recipe's tables need, longest first (for :func:`run_tasks`)."""
    rows = []
    t = set(P.tables)
    seeds = range(P.seeds)
    if t & {"4.2"}:
        rows += [("dgm", s) for s in seeds]
    if t & {"3.1", "4.2", "5.1", "3.2"}:
        rows += [("att", s) for s in seeds]
    if "5.1" in t:
        rows += [("mt", s) for s in seeds]
    if "3.1" in t:
        rows += [(r, s) for r in ("rnn", "fc", "fc_t", "rf") for s in seeds]
        rows += [("missing_negative", s) for s in seeds]
    elif "4.2" in t:
        rows += [("fc", s) for s in seeds]
    if "3.2" in t:
        rows += [(r, s) for r in ("bl", "bl_ft", "bl_ft_final") for s in range(P.balanced_seeds)]
    if "5.3" in t:
        rows += [(f"ratio:{k}:{r}", s) for r in P.ratio.ratios for k in ("mt", "att") for s in range(P.ratio.seeds)]
    seen, out = set(), []
    for r in rows:
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out


_TASK_STATE: dict = {}


def _task(name: str, resolved: dict, out: str, data_key: str, progress: bool):
    """One ``(row, seed)`` in a worker process (:func:`run_tasks`): the arrays come from ``out/features``."""
    import pickle

    from ..config import from_dict

    P = from_dict(WeakMicPreset, resolved)
    if out not in _TASK_STATE:
        D = pickle.loads((Path(out) / "features" / "data.pkl").read_bytes())
        runner = StageRunner(Path(out) / "checkpoints", resolved, data_key, METHOD,
                             (lambda msg: print(f"[worker {os.getpid()}] {msg}", flush=True)) if progress
                             else (lambda msg: None))
        _TASK_STATE[out] = (D, runner)
    D, runner = _TASK_STATE[out]
    row, seed = name.rsplit("#", 1)
    train_row(runner, P, D, row, int(seed))


def train_all(runner: StageRunner, P: WeakMicPreset, D: Data, resolved: dict, out: Path, log, progress: bool,
              engine: Engine) -> dict:
    """Every row's taggers: side by side in ``P.workers`` processes, then loaded here. ``{(row, seed): Tagger}``."""
    rows = rows_of(P)
    pool = None
    if P.workers > 1 and not engine.distributed and len(rows) > 1:
        import pickle

        from ..files import atomic_write_bytes

        atomic_write_bytes(out / "features" / "data.pkl", pickle.dumps(D))
        tasks = {}
        for row, seed in rows:
            needs = (f"att#{seed}",) if row in ("bl_ft", "bl_ft_final") else ()
            tasks[f"{row}#{seed}"] = needs
        _, failed = run_tasks(tasks, _task, (resolved, str(out), runner.data, progress), P.workers, log)
        pool = {"workers": P.workers, "failed": failed}
    taggers = {(row, seed): train_row(runner, P, D, row, seed) for row, seed in rows}
    return {"taggers": taggers, "pool": pool}


# -- scoring --------------------------------------------------------------------------------------------------

KEYS = (("precision", "precision_macro"), ("recall", "recall_macro"), ("f1", "f1_macro"), ("auroc", "auroc"),
        ("map", "ap"))


def score(tagger, D: Data, split: str = "test", threshold: float = 0.5) -> dict:
    """``{"observed": metrics, "true": metrics or None}`` (percent) of ``tagger`` on ``split``."""
    from ..metrics.classification import evaluate

    s = D.splits[split]
    p = predict(tagger, s["x"])
    out = {}
    for view, (y, m) in {"observed": (s["y"], s["mask"]),
                         "true": (s["true"], None) if s["true"] is not None else (None, None)}.items():
        if y is None:
            out[view] = None
            continue
        r = evaluate(y, p, m, threshold, D.classes)
        out[view] = {k: 100 * r["overall"][src] for k, src in KEYS}
        out[view]["per_class_f1"] = {c: 100 * r["per_class"][c]["f1_macro"] for c in D.classes}
    return out


def mean_std(values) -> dict:
    v = np.array([x for x in values if x is not None and np.isfinite(x)], float)
    return {"mean": float(v.mean()) if len(v) else float("nan"), "std": float(v.std()) if len(v) > 1 else 0.0,
            "n": int(len(v))}


def tables(P: WeakMicPreset, D: Data, taggers: dict) -> dict:
    """Every row's scores over its seeds: ``{row: {view: {metric: {"mean", "std"}}}}`` and Figure 5.3."""
    scores = {key: score(t, (D.ratio or D) if key[0].startswith("ratio") else D, threshold=P.threshold)
              for key, t in taggers.items()}
    rows = {}
    for row in dict.fromkeys(r for r, _ in taggers if not r.startswith("ratio")):
        per_seed = [scores[(r, s)] for r, s in taggers if r == row]
        rows[row] = {}
        for view in ("observed", "true"):
            if per_seed[0][view] is None:
                continue
            rows[row][view] = {k: mean_std([p[view][k] for p in per_seed]) for k, _ in KEYS}
            rows[row][view]["per_class_f1"] = {c: float(np.nanmean([p[view]["per_class_f1"][c] for p in per_seed]))
                                               for c in D.classes}
    ratio = {}
    for r in P.ratio.ratios if "5.3" in P.tables else ():
        ratio[str(r)] = {}
        for kind in ("mt", "att"):
            per = [scores[(row, s)] for row, s in taggers if row == f"ratio:{kind}:{r}"]
            if per and per[0]["true"] is not None:
                ratio[str(r)][kind] = {k: mean_std([p["true"][k] for p in per]) for k in ("f1", "auroc", "map")}
    return {"rows": rows, "ratio": ratio}


# -- the experiment -------------------------------------------------------------------------------------------

def prepare(P: WeakMicPreset, resolved: dict, manifest: Manifest, out: Path, log, progress: bool, engine: Engine,
            embedding_dir: Path, ratio_manifest: Manifest | None = None):
    """Features and data of ``manifest`` with the embedding (pretrained, given, or none when every track has
    provided features), and of ``ratio_manifest`` (Figure 5.3's own corpus) with the same embedding into
    ``Data.ratio``. Returns ``(Data, runner, what the embedding was trained on)``."""
    provided = all(t.features is not None for t in manifest.tracks)
    key = fingerprint(manifest.path)
    emb_runner = StageRunner(out / "checkpoints", {"embedding": resolved["embedding"], "seconds": P.seconds},
                             "synth", METHOD, log, engine)
    if provided:
        embedding, emb_kwargs, trained_on, kind = None, None, "provided with the data", "provided"
    else:
        embedding, emb_kwargs, trained_on = embedding_for(P, emb_runner, embedding_dir, log, progress)
        kind = "embedding"
    ekey = emb_runner.key("embedding", {"kwargs": emb_kwargs}) if embedding is not None else "provided"
    feats = features_of(manifest, embedding, out / "features" / "tagging.npz", f"{key}-{ekey}", progress)
    D = Data.build(manifest, feats, embedding=embedding, embedding_kwargs=emb_kwargs, features=kind)
    data_key = f"{key}-{ekey}"
    if ratio_manifest is not None:  # synth audio: the embedding's features (pretrained here for provided features)
        remb, rkw, rekey = embedding, emb_kwargs, ekey
        if remb is None:
            remb, rkw, _ = embedding_for(P, emb_runner, embedding_dir, log, progress)
            rekey = emb_runner.key("embedding", {"kwargs": rkw})
        rkey = f"{fingerprint(ratio_manifest.path)}-{rekey}"
        rfeats = features_of(ratio_manifest, remb, out / "features" / "ratio.npz", rkey, progress)
        D.ratio = Data.build(ratio_manifest, rfeats, embedding=remb, embedding_kwargs=rkw)
        data_key += f"-{rkey}"
    runner = StageRunner(out / "checkpoints", resolved, data_key, METHOD, log, engine)
    runner.curves.update(emb_runner.curves)  # the embedding's pretraining into metrics.csv and the results
    return D, runner, trained_on


def check_disjoint_seeds(P: WeakMicPreset, openmic=None) -> None:
    """The synth corpora of the recipe (tagging ``corpus_seed`` unless ``--openmic``, the embedding's
    ``embedding.seed``, Figure 5.3's ``ratio.corpus_seed`` when
    ``ratio.tracks`` > 0) must have distinct seeds: raises :class:`WeakmirError` naming the pair."""
    seeds = []
    if not openmic:
        seeds.append(("corpus_seed", P.corpus_seed, "the tagging corpus"))
    seeds.append(("embedding.seed", P.embedding.seed, "the embedding's corpus"))
    if "5.3" in P.tables and P.ratio.tracks > 0:
        seeds.append(("ratio.corpus_seed", P.ratio.corpus_seed, "Figure 5.3's corpus"))
    for i, (name, seed, what) in enumerate(seeds):
        for other, oseed, owhat in seeds[:i]:
            if seed == oseed:
                raise WeakmirError(f"recipe: {name} {seed} equals {other}: {what} must be disjoint from {owhat}; "
                                   "give it another seed")


def ratio_corpus(P: WeakMicPreset, out: Path, log, progress: bool, openmic=None) -> Manifest | None:
    """Figure 5.3's own synth corpus in ``out/corpus/ratio`` (``ratio.tracks`` clips, seed ``ratio.corpus_seed``),
    or None when the recipe divides the tagging corpus's training split (``ratio.tracks`` 0) or has no 5.3.
    §5.5 ran on another, larger dataset than the tagging tables (the MSD): its 1 % was ~2 000 clips."""
    from ..data.synth.build import SynthConfig, build_corpus

    R = P.ratio
    if "5.3" not in P.tables or R.tracks <= 0:
        return None
    check_disjoint_seeds(P, openmic)
    build_corpus(out / "corpus" / "ratio", SynthConfig(preset="openmic", tracks=R.tracks, seconds=P.seconds,
                                                       sample_rate=16000, seed=R.corpus_seed), progress=progress)
    log(f"Figure 5.3 corpus: weakmir synth --preset openmic --tracks {R.tracks} --seed {R.corpus_seed}")
    return Manifest.read(out / "corpus" / "ratio")


def experiment(preset: str, out, progress: bool = True, openmic=None, sets=(), engine: Engine | None = None) -> dict | None:
    """Run the experiment (module docstring) into ``out``; returns the results (None on ranks other than 0)."""
    from ..data.synth.build import SynthConfig, build_corpus

    P, resolved = recipe(preset, sets)
    out = Path(out)
    check_output_folder(out, inputs=[openmic] if openmic else (), option="--out")
    engine = engine or Engine(progress=progress)
    t0 = time.perf_counter()
    log = (lambda msg: print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)) if progress else (lambda m: None)
    check_disjoint_seeds(P, openmic)  # before any corpus is built
    if openmic:
        manifest = Manifest.read(openmic)
        if not manifest.split("train"):
            raise WeakmirError(f"{manifest.path}: no track in split train; the OpenMIC loader writes split01's")
        corpus = f"OpenMIC-2018 ({manifest.path})"
    else:
        build_corpus(out / "corpus" / "tagging", SynthConfig(preset="openmic", tracks=P.tracks, seconds=P.seconds,
                                                             sample_rate=16000, seed=P.corpus_seed), progress=progress)
        manifest = Manifest.read(out / "corpus" / "tagging")
        corpus = f"weakmir synth --preset openmic --tracks {P.tracks} --seed {P.corpus_seed}"
    log(f"tagging corpus: {corpus}, {len(manifest.tracks)} clips")
    if "5.3" in P.tables and P.ratio.tracks <= 0 and any(t.true_tags is None for t in manifest.split("train")):
        raise WeakmirError(f"{manifest.path}: Figure 5.3 needs fully labelled training clips and this corpus has only "
                           "observed tags; give Figure 5.3 its own synth corpus (--set ratio.tracks=2000) or leave "
                           "it out (--set 'tables=[\"3.1\",\"3.2\",\"4.2\",\"5.1\"]')")
    ratio_manifest = ratio_corpus(P, out, log, progress, openmic)
    D, runner, trained_on = prepare(P, resolved, manifest, out, log, progress, engine, out / "corpus" / "embedding",
                                    ratio_manifest)
    for split in ("train", "valid", "test"):
        if split not in D.splits:
            raise WeakmirError(f"{manifest.path}: no track in split {split}; weak-mic selects on valid and scores on "
                               "test")
    trained = train_all(runner, P, D, resolved, out, log, progress, engine)
    if global_rank() != 0:
        return None
    taggers = trained["taggers"]
    T = tables(P, D, taggers)
    summary = _summary(T)
    summary.update({"corpus": corpus, "features": D.features, "embedding_trained_on": trained_on,
                    "clips": {k: len(v["x"]) for k, v in D.splits.items()},
                    "ratio_clips": {k: len(v["x"]) for k, v in (D.ratio or D).splits.items()} if T["ratio"] else {},
                    "known_fraction_train": float(D.splits["train"]["mask"].mean()),
                    "seconds": time.perf_counter() - t0})
    results = {"summary": summary, "recipe": resolved, "tables": T, "learning_curves": runner.loss_curves(),
               "workers": trained["pool"]}
    atomic_write_json(out / "results.json", results)
    runner.write_metrics(out / "metrics.csv")
    experiment_page(results, D, taggers, manifest).write(out)
    log(f"done in {summary['seconds'] / 60:.1f} min: {out / 'report.html'}")
    return results


def _summary(T: dict) -> dict:
    view = "true" if any("true" in v for v in T["rows"].values()) else "observed"
    rows = T["rows"]
    s = {"scored_against": view}
    for row, key in (("att", "f1_att"), ("fc_t", "f1_fc_t"), ("fc", "f1_fc"), ("rnn", "f1_rnn"), ("rf", "f1_rf"),
                     ("mt", "f1_mt"), ("dgm", "f1_dgm"), ("missing_negative", "f1_missing_as_negative")):
        if row in rows:
            s[key] = {k: rows[row][view]["f1"][k] for k in ("mean", "std")}
    if "att" in rows:
        s["auroc_att"] = rows["att"][view]["auroc"]["mean"]
        s["map_att"] = rows["att"][view]["map"]["mean"]
    r4 = T["ratio"].get("0.04")
    if r4 and "mt" in r4 and "att" in r4:
        s["mt_gain_at_4pct"] = r4["mt"]["f1"]["mean"] - r4["att"]["f1"]["mean"]
        s["mt_gain_at_4pct_std"] = max(r4["mt"]["f1"]["std"], r4["att"]["f1"]["std"])
    return s


def _pm(d: dict) -> str:
    return f"{d['mean']:.2f} ± {d['std']:.2f}"


def experiment_page(r: dict, D: Data, taggers: dict, manifest: Manifest):
    from ..report.figures import bars, learning_curves
    from ..report.page import Page

    s, T = r["summary"], r["tables"]
    rows = T["rows"]
    page = Page("weakmir experiment weak-mic", f"Gururani's thesis tables on {s['corpus']} ({s['clips']} clips; "
                f"{100 * s['known_fraction_train']:.1f} % of the training labels observed), features: "
                f"{s['features']} ({s['embedding_trained_on']}); {s['seconds'] / 60:.1f} min. Mean ± std over seeds, "
                "percent, test split, threshold 0.5; models selected on the valid split.")
    views = [v for v in ("true", "observed") if any(v in x for x in rows.values())]
    groups = [("Table 3.1: MIL models", ["rf", "fc", "fc_t", "rnn", "att", "missing_negative"]),
              ("Table 3.2: balanced BCE", ["att", "bl", "bl_ft", "bl_ft_final"]),
              ("Table 4.2: DGM", ["att", "fc", "dgm"]), ("Table 5.1: mean teacher", ["att", "mt"])]
    thesis = {"rf": (82.10, 77.69, 78.52, 77.69), "fc": (80.62, 79.09, 79.19, 87.73), "fc_t": (81.21, 79.79, 80.23, 88.87),
              "rnn": (81.18, 79.55, 79.93, 88.42), "att": (81.65, 80.68, 80.84, 89.08), "bl": (81.87, 76.40, 77.05, 88.81),
              "bl_ft": (80.40, 81.50, 79.40, 89.04), "bl_ft_final": (80.95, 81.34, 80.51, 89.03),
              "dgm": (79.79, 81.14, 79.54, 88.78), "mt": (82.13, 80.93, 81.26, 89.33)}
    for title, names in groups:
        names = [n for n in names if n in rows]
        if not names:
            continue
        sec = page.section(title)
        for view in views:
            sec.table([f"model ({'true labels' if view == 'true' else 'observed test tags'})", "precision", "recall",
                       "F1", "AUROC", "mAP", "thesis F1"],
                      [[NAMES[n], *[_pm(rows[n][view][k]) for k, _ in KEYS],
                        thesis[n][2] if n in thesis else ""] for n in names])
    if T["ratio"]:
        sec = page.section("Figure 5.3: MT vs ATT with few labelled clips",
                           "A fraction of the training clips keeps all its labels, the rest none (§5.5); true test "
                           "labels. " + (f"Figure 5.3's own synth corpus ({s['ratio_clips']} clips)."
                                         if r.get("recipe", {}).get("ratio", {}).get("tracks", 0) > 0 else
                                         "The tagging corpus."))
        sec.table(["labelled", "ATT F1", "MT F1", "ATT AUROC", "MT AUROC"],
                  [[f"{100 * float(k):g} %", _pm(v["att"]["f1"]), _pm(v["mt"]["f1"]), _pm(v["att"]["auroc"]),
                    _pm(v["mt"]["auroc"])] for k, v in T["ratio"].items() if "att" in v and "mt" in v])
        xs = [100 * float(k) for k in T["ratio"]]
        sec.figure(bars({m.upper(): [T["ratio"][k][m]["auroc"]["mean"] for k in T["ratio"]] for m in ("att", "mt")},
                        [f"{x:g} %" for x in xs], "AUROC vs labelled fraction", "AUROC (%)"), "figure 5.3", "fig5_3")
    names = [n for n in ("rf", "fc", "fc_t", "rnn", "att", "mt", "dgm") if n in rows]
    if names and views:  # a recipe with only Figure 5.3 (tables: ["5.3"]) has no table rows
        view = views[0]
        page.section("Figure 3.4: instrument-wise F1").figure(
            bars({NAMES[n]: [rows[n][view]["per_class_f1"][c] for c in D.classes] for n in names}, list(D.classes),
                 f"macro F1 per instrument ({view} labels)", "F1 (%)"), "figure 3.4", "fig3_4")
    att = taggers.get(("att", 0))
    if att is not None:
        _attention_section(page, att, D, manifest)
    page.section("Learning curves").figure(learning_curves({k: v for k, v in r["learning_curves"].items()
                                                             if k.endswith("seed0")}, "training loss (seed 0)"),
                                           "learning curves", "curves")
    return page


def _attention_section(page, att, D: Data, manifest: Manifest) -> None:
    """Figure 3.5: ATT's attention weights over the instances of two test clips, for their true classes."""
    import torch

    from ..report.figures import attention_map

    s = D.splits["test"]
    labels = s["true"] if s["true"] is not None else s["y"]
    order = np.argsort(-labels.sum(axis=1))[:2]
    sec = page.section("Figure 3.5: attention weights", "Per instance (0.96 s) and present class, ATT seed 0.")
    for i in order:
        present = [k for k in range(len(D.classes)) if labels[i, k] > 0] or list(range(3))
        with torch.no_grad():
            w = att.attention(torch.as_tensor(s["x"][i:i + 1]))[0].numpy()
        track = manifest.track(s["ids"][i])
        audio = None
        if track.mixture is not None:
            from ..methods.weak_mic import clip_audio

            audio = clip_audio(manifest, track)
        sec.figure(attention_map(w[:, present], [D.classes[k] for k in present], audio, 16000, f"clip {track.id}"),
                   f"attention weights, {track.id}", f"attention_{i}")


__all__ = ["WeakMicPreset", "RatioConfig", "recipe", "experiment", "prepare", "ratio_corpus", "check_disjoint_seeds",
           "train_row", "score", "tables", "Data"]
