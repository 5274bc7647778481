"""The ``openmic`` preset: 10-s clips of one to several instruments over all 20 OpenMIC-2018 classes.

OpenMIC-2018 (Humphrey et al. 2018) is 20 000 10-s clips, each with a few clip-level tags out of 20
instrument classes; weak-mic_gururani_thesis trains on it. This preset makes clips of the same shape:

* **classes and patches**: each class plays General MIDI patches (:data:`PATCHES`); ``cymbals`` and
  ``drums`` are two parts on the drum channel (cymbal notes 42/46/49/51/52/55/57/59 vs kick, snare and
  toms), ``mandolin`` and ``ukulele`` play the GS variation banks of FluidR3_GM (bank 16 program 25,
  bank 8 program 24). A SoundFont without a class's patches leaves that class out of the draw
  (:func:`playable`): TimGM6mb has no mandolin and no ukulele.
* **imbalance**: each class is in a clip with the chance :data:`PRIOR` (voice 0.45 ... ukulele 0.04,
  ordered as OpenMIC's positives are: voice, guitar, drums, cymbals, piano, synthesizer first;
  clarinet, mandolin, ukulele, accordion last); at least one class, at most :data:`MAX_PARTS`.
* **music**: one key, tempo (70-150 bpm) and four-chord progression per clip; chord instruments
  (piano, guitar, organ, accordion, banjo, mandolin, ukulele) play block chords or arpeggios,
  melody instruments a monophonic scale line in their range, bass and cello a bass line, drums a
  backbeat and cymbals hi-hats with crashes. Each part plays each bar with a chance drawn per part
  (0.35-1, at least one bar), so an instrument is often in only part of the clip: what the 10
  instances of a bag and attention pooling are for.
* **observed tags** (:func:`observe_tags`): as sparse as OpenMIC's (~40 000 labels for 20 000 clips
  x 20 classes, ≈10 %): ``1 + Poisson(1)`` labels per clip (mean 2 of 20), each a present class with
  chance 0.5 (while one is unobserved) else an absent one; the rest unknown. True labels are kept.

Shapes: parts as :class:`weakmir.data.synth.render.Part` (notes ``(n, 4)``).
"""

from __future__ import annotations

import numpy as np

from ..labels import OPENMIC, LabelSet
from .render import Part

# class -> (role, [(bank, program), ...]); role decides the line a part plays
PATCHES: dict[str, tuple[str, list[tuple[int, int]]]] = {
    "accordion": ("chords", [(0, 21), (0, 23)]),
    "banjo": ("pluck", [(0, 105)]),
    "bass": ("bass", [(0, 32), (0, 33), (0, 34), (0, 35)]),
    "cello": ("low", [(0, 42)]),
    "clarinet": ("melody", [(0, 71)]),
    "cymbals": ("cymbals", [(128, 0)]),
    "drums": ("drums", [(128, 0)]),
    "flute": ("melody", [(0, 73)]),
    "guitar": ("chords", [(0, 24), (0, 25), (0, 26), (0, 27), (0, 29)]),
    "mallet_percussion": ("pluck", [(0, 9), (0, 11), (0, 12), (0, 13)]),
    "mandolin": ("pluck", [(16, 25)]),
    "organ": ("chords", [(0, 16), (0, 17), (0, 18), (0, 19)]),
    "piano": ("chords", [(0, 0), (0, 1), (0, 2)]),
    "saxophone": ("melody", [(0, 64), (0, 65), (0, 66), (0, 67)]),
    "synthesizer": ("melody", [(0, 80), (0, 81), (0, 88), (0, 89), (0, 90)]),
    "trombone": ("melody", [(0, 57)]),
    "trumpet": ("melody", [(0, 56)]),
    "ukulele": ("pluck", [(8, 24)]),
    "violin": ("melody", [(0, 40)]),
    "voice": ("melody", [(0, 52), (0, 53), (0, 54)]),
}
INSTRUMENT = {"cymbals": "cymbals", "drums": "drums", "mandolin": "mandolin", "ukulele": "ukulele",
              "banjo": "banjo", "synthesizer": "synth_lead", "voice": "voice", "guitar": "acoustic_guitar"}
PRIOR = {"voice": 0.45, "guitar": 0.40, "drums": 0.35, "cymbals": 0.30, "piano": 0.30, "synthesizer": 0.28,
         "bass": 0.25, "violin": 0.12, "organ": 0.10, "saxophone": 0.08, "trumpet": 0.08, "cello": 0.08,
         "flute": 0.07, "mallet_percussion": 0.06, "trombone": 0.05, "banjo": 0.05, "accordion": 0.05,
         "clarinet": 0.04, "mandolin": 0.04, "ukulele": 0.04}
RANGE = {"clarinet": (55, 84), "flute": (67, 93), "saxophone": (49, 80), "synthesizer": (57, 84),
         "trombone": (40, 70), "trumpet": (55, 82), "violin": (55, 91), "voice": (55, 79), "cello": (36, 64),
         "bass": (28, 52)}
MAX_PARTS = 5
KIT = (36, 38, 41, 43, 45, 47)  # kick, snare, toms
CYMBALS = (42, 46, 49, 51, 52, 55, 57, 59)
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
PROGRESSIONS = ((0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 4, 3), (3, 4, 0, 0), (0, 4, 3, 4))


def playable(soundfont_presets: set) -> tuple[str, ...]:
    """The classes whose patches ``soundfont_presets`` (``{(bank, program)}``,
    :func:`weakmir.data.synth.render.presets`) holds at least one of."""
    return tuple(c for c in OPENMIC if any(p in soundfont_presets for p in PATCHES[c][1]))


def draw_classes(rng: np.random.Generator, classes=OPENMIC) -> list[str]:
    """The classes of one clip: each with its :data:`PRIOR`, at least one, at most :data:`MAX_PARTS`."""
    classes = list(classes)
    prior = np.array([PRIOR[c] for c in classes])
    chosen = [c for c, u in zip(classes, rng.random(len(classes))) if u < PRIOR[c]]
    if not chosen:
        chosen = [classes[int(rng.choice(len(classes), p=prior / prior.sum()))]]
    if len(chosen) > MAX_PARTS:
        chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), MAX_PARTS, replace=False))]
    return chosen


def observe_tags(true_present, rng: np.random.Generator, vocab=OPENMIC) -> LabelSet:
    """OpenMIC-sparse observed tags (module docstring): ``1 + Poisson(1)`` labels, positives with chance 0.5."""
    present = [v for v in vocab if v in set(true_present)]
    absent = [v for v in vocab if v not in set(true_present)]
    k = min(1 + int(rng.poisson(1.0)), len(vocab))
    pos, neg = [], []
    for _ in range(k):
        left_p = [v for v in present if v not in pos]
        left_n = [v for v in absent if v not in neg]
        if left_p and (not left_n or rng.random() < 0.5):
            pos.append(left_p[int(rng.integers(len(left_p)))])
        elif left_n:
            neg.append(left_n[int(rng.integers(len(left_n)))])
    return LabelSet(frozenset(pos), frozenset(neg))


def openmic_parts(rng: np.random.Generator, seconds: float, classes=OPENMIC):
    """Parts of one clip of ``seconds`` (module docstring). Returns ``(parts, duration, provenance)``."""
    from ..labels import gm_instrument

    tonic = int(rng.integers(0, 12))
    scale = MINOR if rng.random() < 0.3 else MAJOR
    bpm = float(rng.uniform(70, 150))
    beat = 60.0 / bpm
    bar = 4 * beat
    prog = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    n_bars = int(np.ceil(seconds / bar))
    chosen = draw_classes(rng, classes)
    parts = []

    def part(name, plays=None):
        """The part of class ``name``, or None when none of the bars it plays starts inside the clip."""
        role, patches = PATCHES[name]
        bank, program = patches[int(rng.integers(len(patches)))]
        if plays is None:
            plays = rng.random(n_bars) < rng.uniform(0.35, 1.0)
            plays[int(rng.integers(n_bars))] = True
        rows = []
        cur = None
        lo, hi = RANGE.get(name, (55, 79))
        for b in range(n_bars):
            if not plays[b]:
                continue
            t0 = 0.05 + b * bar
            degree = prog[b % 4]
            chord = [tonic + scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
            vel = float(rng.uniform(70, 110))
            if role == "chords":
                base = 48 if name != "accordion" else 53
                notes = [base + (p % 12) + (12 if (p % 12) < 4 else 0) for p in chord]
                if rng.random() < 0.5:
                    for k in range(2):
                        for p in notes:
                            rows.append((t0 + 2 * k * beat, t0 + (2 * k + 1.9) * beat, p, vel))
                else:
                    for k in range(8):
                        rows.append((t0 + k * beat / 2, t0 + (k + 1) * beat / 2, notes[k % 3], vel))
            elif role == "pluck":
                notes = [60 + (p % 12) for p in chord] + [72 + chord[0] % 12]
                step = beat / (4 if rng.random() < 0.4 else 2)
                for k in range(int(round(bar / step))):
                    rows.append((t0 + k * step, t0 + (k + 0.9) * step, notes[k % 4], vel))
            elif role in ("bass", "low"):
                root = lo + ((chord[0] - lo) % 12)
                n = 8 if role == "bass" and rng.random() < 0.5 else 4
                for k in range(n):
                    p = root + (7 if k % 4 == 2 and root + 7 <= hi else 0)
                    rows.append((t0 + k * bar / n, t0 + (k + 0.9) * bar / n, p, vel))
            elif role == "melody":
                cands = [p for p in range(lo, hi + 1) if (p - tonic) % 12 in scale]
                cur = int(rng.choice(cands)) if cur is None else cur
                vt = t0
                while vt < t0 + bar - 1e-6:
                    dur = beat * float(rng.choice([0.5, 1.0, 1.0, 2.0]))
                    near = [p for p in cands if abs(p - cur) <= 4] or cands
                    cur = int(rng.choice(near))
                    rows.append((vt, min(vt + dur * 0.92, t0 + bar), cur, vel))
                    vt += dur
            elif role == "drums":
                for k in range(4):
                    rows.append((t0 + k * beat, t0 + k * beat + 0.1, KIT[0] if k % 2 == 0 else KIT[1], vel))
                if rng.random() < 0.3:
                    for k, tom in enumerate(KIT[2:]):
                        rows.append((t0 + 3 * beat + k * beat / 4, t0 + 3 * beat + (k + 1) * beat / 4, tom, vel))
            else:  # cymbals
                hat = CYMBALS[int(rng.integers(4))]
                for k in range(8):
                    rows.append((t0 + k * beat / 2, t0 + k * beat / 2 + 0.1, hat, vel * 0.8))
                if b % 4 == 0:
                    rows.append((t0, t0 + 0.5, CYMBALS[2 + int(rng.integers(len(CYMBALS) - 2))], vel))
        notes = np.array([r for r in rows if r[0] < seconds - 0.05], dtype=np.float64).reshape(-1, 4)
        if not len(notes):
            return None
        notes[:, 1] = np.minimum(notes[:, 1], seconds)
        drum = bank == 128
        instrument = INSTRUMENT.get(name) or gm_instrument(program)
        return Part(name, program, instrument, notes, is_drum=drum, bank=0 if drum else bank,
                    pan=float(rng.uniform(-0.5, 0.5)), gain_db=float(rng.uniform(-6, 0)),
                    meta={"openmic_class": name, "bank": bank, "bars_played": int(plays.sum())})

    for name in chosen:
        p = part(name)
        if p is not None:
            parts.append(p)
    if not parts:  # every class drew only the bar that starts past the clip's end: the first plays bar one
        parts.append(part(chosen[0], np.arange(n_bars) == 0))
    prov = {"source": "procedural openmic clip", "tempo_bpm": round(bpm, 2), "classes": [p.name for p in parts]}
    return parts, float(seconds), prov
