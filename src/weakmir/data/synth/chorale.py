"""The ``chorale`` preset: real four-part Bach chorales from the music21 corpus.

Each track is one chorale (S, A, T, B parts), with a random tempo (60–96
quarter notes per minute) and transposition (−3…+3 semitones), rendered one
part per stem. By default the parts get Bach10's instruments (Duan & Pardo
2010: violin, clarinet, tenor saxophone, bassoon); ``programs="random"`` draws
each part's General MIDI program from a pool that suits its register.

The catalog of usable chorales (``chorales.json``, shipped in the package)
lists corpus files that parse as exactly four parts with notes in each; it is
re-made by ``python -m weakmir.data.synth.chorale``. Fermatas and repeats are
ignored (the score is played straight through, as written once).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...errors import WeakmirError
from ..labels import gm_instrument
from .render import Part, keep_stretches

CATALOG = Path(__file__).with_name("chorales.json")
VOICES = ("soprano", "alto", "tenor", "bass")
BACH10_PROGRAMS = {"soprano": 40, "alto": 71, "tenor": 66, "bass": 70}  # violin, clarinet, tenor sax, bassoon
RANDOM_PROGRAMS = {
    "soprano": (40, 73, 68, 56, 53, 71),
    "alto": (71, 41, 65, 69, 60, 53),
    "tenor": (66, 42, 57, 60, 41, 53),
    "bass": (70, 42, 43, 58, 57, 32),
}
TEMPO_BPM = (60.0, 96.0)
TRANSPOSE = (-3, 3)


def _corpus_root() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def _parse_parts(relpath: str) -> list[list[tuple[float, float, list[int]]]]:
    """``[(onset_quarters, duration_quarters, [midi pitches])...]`` for each of the 4 parts."""
    from music21 import converter

    path = _corpus_root() / relpath
    score = converter.parse(str(path))
    parts = list(score.parts)
    if len(parts) != 4:
        raise ValueError(f"{relpath}: {len(parts)} parts")
    out = []
    for p in parts:
        events = []
        for el in p.stripTies().flatten().notes:
            dur = float(el.duration.quarterLength)
            if dur <= 0:
                continue
            pitches = [el.pitch.midi] if el.isNote else [q.midi for q in el.pitches]
            events.append((float(el.offset), dur, pitches))
        if not events:
            raise ValueError(f"{relpath}: empty part")
        out.append(events)
    return out


def build_catalog(progress: bool = True) -> list[str]:
    """Scan the music21 Bach corpus for usable four-part chorales."""
    from music21 import corpus

    root = _corpus_root()
    usable = []
    paths = sorted(str(Path(p).relative_to(root)) for p in corpus.getComposer("bach") if str(p).endswith((".mxl", ".xml")))
    for rel in paths:
        try:
            parts = _parse_parts(rel)
        except Exception:
            continue
        quarters = max(e[0] + e[1] for part in parts for e in part)
        if quarters >= 16:
            usable.append(rel)
        if progress and (len(paths) - paths.index(rel)) % 25 == 1:
            print(f"\r{len(usable)} usable / {paths.index(rel) + 1} scanned", end="", flush=True)
    if progress:
        print()
    return usable


def catalog() -> list[str]:
    """The shipped list of usable chorale files (relative to the music21 corpus)."""
    if not CATALOG.exists():
        raise WeakmirError(f"{CATALOG}: chorale catalog missing; run: python -m weakmir.data.synth.chorale")
    return json.loads(CATALOG.read_text())["chorales"]


def chorale_parts(relpath: str, rng: np.random.Generator, seconds: float, programs: str = "bach10",
                  rests: float = 0.0):
    """Parts of one chorale, timed in seconds and cropped to ``seconds``.

    ``rests``: the chance that a voice rests through each stretch of 8 quarter notes (at least one voice
    plays in every stretch); 0 keeps the chorale whole (and draws nothing, so tracks stay as they were).

    Returns:
        ``(parts, duration, provenance)``; ``parts`` is a list of 4 :class:`Part`.
    """
    if programs not in ("bach10", "random"):
        raise WeakmirError(f"unknown --programs {programs!r}; use 'bach10' or 'random'")
    raw = _parse_parts(relpath)
    bpm = float(rng.uniform(*TEMPO_BPM))
    spq = 60.0 / bpm
    transpose = int(rng.integers(TRANSPOSE[0], TRANSPOSE[1] + 1))
    start = min(e[0] for part in raw for e in part)
    lead_in = 0.2
    parts, names = [], set()
    for voice, events in zip(VOICES, raw):
        prog = BACH10_PROGRAMS[voice] if programs == "bach10" else int(rng.choice(RANDOM_PROGRAMS[voice]))
        instrument = gm_instrument(prog)
        name = instrument if instrument not in names else f"{instrument}_{voice}"
        names.add(name)
        rows = []
        for q, dur, pitches in events:
            on = lead_in + (q - start) * spq
            off = on + dur * spq * 0.96  # a small gap so repeated notes re-attack
            if on >= seconds - 0.25:
                continue
            off = min(off, seconds)
            vel = float(np.clip(rng.normal(84, 6), 40, 120))
            rows += [(on, off, p + transpose, vel) for p in pitches]
        notes = np.array(rows, dtype=np.float64).reshape(-1, 4)
        parts.append(Part(name=name, program=prog, instrument=instrument, notes=notes,
                          pan=float(rng.uniform(-0.5, 0.5)), gain_db=float(rng.uniform(-3.0, 0.0)),
                          meta={"voice": voice}))
    if rests > 0:
        stretch = 8 * spq
        n = int(np.ceil(seconds / stretch)) + 1
        plays = rng.random((len(parts), n)) >= rests
        silent = ~plays.any(axis=0)
        plays[rng.integers(len(parts), size=int(silent.sum())), np.flatnonzero(silent)] = True
        for k, part in enumerate(parts):
            part.notes = keep_stretches(part.notes, plays[k], stretch)
    last = max(float(p.notes[:, 1].max()) for p in parts if len(p.notes))
    duration = min(seconds, last + 1.0)
    prov = {"source": f"music21 corpus {relpath}", "tempo_bpm": round(bpm, 2), "transpose": transpose}
    return parts, duration, prov


if __name__ == "__main__":
    cat = build_catalog()
    CATALOG.write_text(json.dumps({"source": "music21 corpus, composer bach", "chorales": cat}, indent=0) + "\n")
    print(f"wrote {len(cat)} chorales to {CATALOG}")
