"""The ``pop`` preset: procedural songs with drums, bass, chords and a lead "vocals" part.

Each song draws a key (major 70 % / natural minor), a tempo (80–140 bpm,
4/4), a form (intro, verse, chorus, ... in 4- or 8-bar sections), one
four-chord progression per section type, and per part a General MIDI program:

* ``drums``: GM kit; kick/snare backbeat, 8th or 16th hi-hats, crash on
  section starts; absent in some intros.
* ``bass``: finger/pick/fretless/synth bass; roots, fifths and octaves on
  8ths or quarters; monophonic (so it has f0).
* ``chords``: piano, electric piano, organ, acoustic/clean guitar; block
  chords or arpeggios in the middle register.
* ``vocals``: voice-like patches (voice oohs, synth voice; not choir aahs,
  an ensemble patch whose pitch wanders 10–30 cents from the score);
  phrases on the scale with chord tones on strong beats; monophonic; rests
  between phrases and silent in intros.
* sometimes ``pad`` (strings/synth pad/flute/organ), labelled ``other``.

Stem labels follow the instrument's mapping (vocals/bass/drums/other).
"""

from __future__ import annotations

import numpy as np

from ..labels import gm_instrument
from .render import Part, keep_stretches

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
PROGRESSIONS = ((0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 4, 3), (0, 3, 0, 4), (3, 4, 0, 0), (0, 4, 3, 4), (5, 4, 3, 4))
FORMS = (
    (("intro", 4), ("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("outro", 4)),
    (("intro", 4), ("verse", 8), ("verse", 8), ("chorus", 8), ("bridge", 4), ("chorus", 8)),
    (("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("chorus", 8)),
)
BASS_PROGRAMS = (33, 34, 35, 38, 39)
CHORD_PROGRAMS = (0, 1, 4, 5, 16, 17, 24, 25, 27)
VOCAL_PROGRAMS = (53, 54)  # voice oohs, synth voice; choir aahs (52) is an ensemble, detuned by 10-30 cents
PAD_PROGRAMS = (48, 49, 89, 90, 73, 19)
KICK, SNARE, HAT, OPEN_HAT, CRASH = 36, 38, 42, 46, 49


def _triad(degree: int, scale, tonic: int) -> list[int]:
    """Pitch classes offsets (semitones above tonic) of the diatonic triad on ``degree``."""
    return [scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]


def pop_parts(rng: np.random.Generator, seconds: float):
    """Parts of one procedural song, cropped to ``seconds``.

    Returns:
        ``(parts, duration, provenance)``.
    """
    tonic = int(rng.integers(0, 12))
    minor = bool(rng.random() < 0.3)
    scale = MINOR if minor else MAJOR
    bpm = float(rng.uniform(80, 140))
    beat = 60.0 / bpm
    bar = 4 * beat
    form = FORMS[int(rng.integers(len(FORMS)))]
    progs = {name: PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))] for name, _ in form}
    start = 0.1
    sections, t = [], start
    for name, bars in form:
        for b in range(bars):
            if t >= seconds:
                break
            sections.append((name, b, t, progs[name][b % 4]))
            t += bar
    end_time = min(seconds, t)

    drums, bass, chords, vocals, pad = [], [], [], [], []
    has_pad = rng.random() < 0.4
    hat16 = rng.random() < 0.35
    bass_eighths = rng.random() < 0.6
    arpeggio = rng.random() < 0.4
    drum_intro = rng.random() < 0.5
    base = 48 + tonic  # chord register (C3..B3 + tonic)
    for name, b, t0, degree in sections:
        tri = _triad(degree, scale, tonic)
        # drums
        if name != "intro" or drum_intro:
            if b == 0:
                drums.append((t0, t0 + 0.5, CRASH, 100))
            n_hat = 16 if hat16 else 8
            for k in range(n_hat):
                ht = t0 + k * bar / n_hat
                drums.append((ht, ht + 0.05, OPEN_HAT if (k == n_hat - 1 and rng.random() < 0.3) else HAT,
                              float(rng.uniform(55, 85) + (15 if k % (n_hat // 4) == 0 else 0))))
            for k in (0, 2):
                drums.append((t0 + k * beat, t0 + k * beat + 0.1, KICK, float(rng.uniform(95, 115))))
            if rng.random() < 0.5:
                kt = t0 + 2.5 * beat
                drums.append((kt, kt + 0.1, KICK, float(rng.uniform(80, 100))))
            for k in (1, 3):
                drums.append((t0 + k * beat, t0 + k * beat + 0.1, SNARE, float(rng.uniform(95, 118))))
        # bass: root register E1..D#2 + tonic -> 28..51
        root = 28 + (tonic + tri[0]) % 12
        steps = 8 if bass_eighths else 4
        for k in range(steps):
            bt = t0 + k * bar / steps
            choice = rng.random()
            p = root + (12 if choice < 0.15 else (tri[2] - tri[0]) if choice < 0.3 else 0)
            bass.append((bt, bt + 0.9 * bar / steps, p, float(rng.uniform(85, 110))))
        # chords
        pitches = [base + iv for iv in tri]
        if arpeggio:
            seq = pitches + [pitches[0] + 12] + pitches[::-1][1:] + [pitches[0]]
            for k in range(8):
                at = t0 + k * bar / 8
                chords.append((at, at + bar / 8 * 0.95, seq[k % len(seq)], float(rng.uniform(60, 85))))
        else:
            for half in (0, 1):
                ct = t0 + half * bar / 2
                for p in pitches:
                    chords.append((ct, ct + bar / 2 * 0.95, p, float(rng.uniform(60, 85))))
        # pad: sustained root + fifth an octave up
        if has_pad and name in ("chorus", "bridge", "outro"):
            for iv in (tri[0], tri[2]):
                pad.append((t0, t0 + bar * 0.98, 60 + tonic + iv, 60.0))
        # vocals: two-bar phrases, rest every other bar in verses
        if name not in ("intro", "outro") and not (name == "verse" and b % 2 == 1 and rng.random() < 0.5):
            vt = t0 + (0.0 if rng.random() < 0.6 else beat / 2)
            chord_pcs = {(tonic + iv) % 12 for iv in tri}
            cur = 64 + tonic % 12 - (12 if tonic % 12 > 7 else 0)
            while vt < t0 + bar - beat / 2:
                dur = float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0])) * beat
                dur = min(dur, t0 + bar - vt)
                strong = abs(((vt - t0) / beat) % 2) < 1e-6
                cands = [p for p in range(cur - 4, cur + 5)
                         if (p - tonic) % 12 in scale and 57 <= p <= 79]
                if strong:
                    cands = [p for p in cands if p % 12 in chord_pcs] or cands
                cur = int(rng.choice(cands)) if cands else cur
                vocals.append((vt, vt + dur * 0.92, cur, float(rng.uniform(80, 105))))
                vt += dur

    def arr(rows):
        a = np.array([r for r in rows if r[0] < seconds - 0.1], dtype=np.float64).reshape(-1, 4)
        if len(a):
            a[:, 1] = np.minimum(a[:, 1], seconds)
        return a

    bass_prog = int(rng.choice(BASS_PROGRAMS))
    chord_prog = int(rng.choice(CHORD_PROGRAMS))
    vocal_prog = int(rng.choice(VOCAL_PROGRAMS))
    parts = [
        Part("drums", 0, "drums", arr(drums), is_drum=True, pan=0.0, gain_db=float(rng.uniform(-4, 0))),
        Part("bass", bass_prog, gm_instrument(bass_prog), arr(bass), pan=0.0, gain_db=float(rng.uniform(-4, 0))),
        Part("chords", chord_prog, gm_instrument(chord_prog), arr(chords), pan=float(rng.uniform(-0.5, 0.5)),
             gain_db=float(rng.uniform(-8, -3))),
        Part("vocals", vocal_prog, gm_instrument(vocal_prog), arr(vocals), pan=float(rng.uniform(-0.1, 0.1)),
             gain_db=float(rng.uniform(-2, 2))),
    ]
    if has_pad and len(arr(pad)):
        pad_prog = int(rng.choice(PAD_PROGRAMS))
        parts.append(Part("pad", pad_prog, gm_instrument(pad_prog), arr(pad), pan=float(rng.uniform(-0.6, 0.6)),
                          gain_db=float(rng.uniform(-12, -6))))
    parts = [p for p in parts if len(p.notes)]
    key_names = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    prov = {"source": "procedural pop", "key": f"{key_names[tonic]} {'minor' if minor else 'major'}",
            "tempo_bpm": round(bpm, 2), "form": [n for n, _ in form]}
    duration = min(seconds, end_time + 1.0)
    return parts, duration, prov


SLAKH_PROGRAMS = {"piano": 0, "guitar": 30, "bass": 33}  # acoustic grand, distortion guitar, finger bass
# Level offsets on the pop parts' gains: the GM piano renders ~10 dB below the distortion guitar and the
# bass, so without them the piano sits at -15 dB input SI-SDR; with them (and the rests below) the
# input-mixture SI-SDRs come near the paper's Table 1 (bass 1.2, guitar -5.8, piano -2.3 dB; 60 tracks of
# 20 s, test split: 2.0, -4.3, -3.7 dB).
SLAKH_GAIN_DB = {"piano": 10.0, "guitar": -3.0, "bass": -5.0}
# Each instrument plays a two-bar stretch with this chance (else it rests), so that the frame-activity
# rates come near the paper's Slakh subset (§3.2: piano 0.41, guitar 0.14, bass 0.67) instead of the pop
# songs' ~0.95 / 0.48 / 0.90: clips where an instrument rests are what the clip-level mixture loss and
# the classifier-critic baseline learn from.
SLAKH_PLAY = {"piano": 0.45, "guitar": 0.35, "bass": 0.75}
SLAKH_PARTS = (("piano", "chords", 0), ("guitar", "vocals", -12), ("bass", "bass", 0))  # name, pop part, shift


def slakh_parts(rng: np.random.Generator, seconds: float):
    """The ``slakh`` preset: score-supervised_hung2021's instrument set (§3.1: acoustic piano,
    distorted electric guitar, electric bass) on the procedural pop songs.

    The song's chords (block or arpeggiated) go to the piano, its lead line an octave down to a
    distorted guitar (monophonic and sparse, as Slakh's guitars are: the paper measures 14 % frame
    activity), its bass line to an electric bass; no drums, vocals or pad. Stems are named after
    the instrument (``piano``, ``guitar``, ``bass``); levels per :data:`SLAKH_GAIN_DB`; each rests in
    two-bar stretches per :data:`SLAKH_PLAY`.
    """
    parts, duration, prov = pop_parts(rng, seconds)
    by_name = {p.name: p for p in parts}
    stretch = 2 * 4 * 60.0 / prov["tempo_bpm"]  # two bars of 4/4
    n_stretches = int(np.ceil(seconds / stretch)) + 1
    out = []
    kept = {}  # name -> (pop part, the notes it keeps)
    for name, source, _ in SLAKH_PARTS:
        p = by_name.get(source)
        plays = rng.random(n_stretches) < SLAKH_PLAY[name]
        if p is not None and len(p.notes):
            kept[name] = (p, keep_stretches(p.notes, plays, stretch))
    if kept and not any(len(n) for _, n in kept.values()):  # a short song that rested throughout: keep its bass
        name = "bass" if "bass" in kept else next(iter(kept))
        kept[name] = (kept[name][0], kept[name][0].notes)
    for name, _, shift in SLAKH_PARTS:
        if name not in kept or not len(kept[name][1]):
            continue
        p, notes = kept[name]
        notes = notes.copy()
        notes[:, 2] += shift
        prog = SLAKH_PROGRAMS[name]
        out.append(Part(name, prog, gm_instrument(prog), notes, pan=0.0, gain_db=p.gain_db + SLAKH_GAIN_DB[name]))
    prov = {**prov, "source": "procedural pop, Slakh instrument set"}
    return out, duration, prov
