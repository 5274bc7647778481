"""Label vocabularies and three-state label sets.

Two vocabularies ship:

* ``stems4``: the MUSDB18 / MDX23 separation stems ``vocals, bass, drums, other``.
* ``openmic``: the 20 instrument classes of OpenMIC-2018 (clip tags).

Instrument names (``INSTRUMENTS``) are finer than either: each maps to one
stem and, where OpenMIC has the class, to one OpenMIC tag. General MIDI
programs map to instrument names (:func:`gm_instrument`).

A :class:`LabelSet` holds *observed* labels in three states: present,
absent, unknown (anything in the vocabulary that is in neither set). Missing
labels are a mask, never negatives: ``vector()`` returns values and a mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ManifestError

STEMS4 = ("vocals", "bass", "drums", "other")

OPENMIC = (
    "accordion", "banjo", "bass", "cello", "clarinet", "cymbals", "drums", "flute", "guitar",
    "mallet_percussion", "mandolin", "organ", "piano", "saxophone", "synthesizer", "trombone",
    "trumpet", "ukulele", "violin", "voice",
)

# instrument name -> (stems4 label, openmic class or None)
INSTRUMENTS: dict[str, tuple[str, str | None]] = {
    "voice": ("vocals", "voice"),
    "choir": ("vocals", "voice"),
    "bass": ("bass", "bass"),
    "synth_bass": ("bass", "synthesizer"),
    "contrabass": ("bass", "bass"),
    "drums": ("drums", "drums"),
    "cymbals": ("drums", "cymbals"),
    "piano": ("other", "piano"),
    "electric_piano": ("other", "piano"),
    "mallet_percussion": ("other", "mallet_percussion"),
    "organ": ("other", "organ"),
    "accordion": ("other", "accordion"),
    "harmonica": ("other", None),
    "acoustic_guitar": ("other", "guitar"),
    "electric_guitar": ("other", "guitar"),
    "distorted_guitar": ("other", "guitar"),
    "banjo": ("other", "banjo"),
    "mandolin": ("other", "mandolin"),
    "ukulele": ("other", "ukulele"),
    "violin": ("other", "violin"),
    "viola": ("other", None),
    "cello": ("other", "cello"),
    "strings": ("other", None),
    "harp": ("other", None),
    "trumpet": ("other", "trumpet"),
    "trombone": ("other", "trombone"),
    "tuba": ("other", None),
    "french_horn": ("other", None),
    "brass": ("other", None),
    "saxophone": ("other", "saxophone"),
    "oboe": ("other", None),
    "bassoon": ("other", None),
    "clarinet": ("other", "clarinet"),
    "flute": ("other", "flute"),
    "synth_lead": ("other", "synthesizer"),
    "synth_pad": ("other", "synthesizer"),
    "other": ("other", None),
}

_VOCABS = {"stems4": STEMS4, "openmic": OPENMIC, "instruments": tuple(INSTRUMENTS)}


def vocabulary(name: str) -> tuple[str, ...]:
    """The labels of a named vocabulary (``stems4``, ``openmic``, ``instruments``)."""
    try:
        return _VOCABS[name]
    except KeyError:
        raise ManifestError(f"unknown label vocabulary {name!r}; use one of {', '.join(_VOCABS)}") from None


def check_labels(labels, vocab: tuple[str, ...], where: str = "") -> None:
    """Raise a one-line error naming the first label not in ``vocab``."""
    for lab in labels:
        if lab not in vocab:
            prefix = f"{where}: " if where else ""
            raise ManifestError(f"{prefix}unknown label {lab!r} (known: {', '.join(vocab)}); fix the label")


def instrument_stem(instrument: str) -> str:
    """The stems4 label of an instrument name."""
    check_labels([instrument], tuple(INSTRUMENTS), "instrument")
    return INSTRUMENTS[instrument][0]


def instrument_tag(instrument: str) -> str | None:
    """The OpenMIC class of an instrument name, or None when OpenMIC has none."""
    check_labels([instrument], tuple(INSTRUMENTS), "instrument")
    return INSTRUMENTS[instrument][1]


def gm_instrument(program: int, is_drum: bool = False) -> str:
    """Instrument name of a General MIDI program (0-127) or the drum channel."""
    if is_drum:
        return "drums"
    p = int(program)
    table = [
        (0, 3, "piano"), (4, 5, "electric_piano"), (6, 7, "piano"), (8, 15, "mallet_percussion"),
        (16, 20, "organ"), (21, 21, "accordion"), (22, 22, "harmonica"), (23, 23, "accordion"),
        (24, 25, "acoustic_guitar"), (26, 28, "electric_guitar"), (29, 30, "distorted_guitar"),
        (31, 31, "electric_guitar"), (32, 32, "contrabass"), (33, 37, "bass"), (38, 39, "synth_bass"),
        (40, 40, "violin"), (41, 41, "viola"), (42, 42, "cello"), (43, 43, "contrabass"),
        (44, 45, "strings"), (46, 46, "harp"), (47, 47, "other"), (48, 51, "strings"),
        (52, 53, "choir"), (54, 54, "voice"), (55, 55, "other"), (56, 56, "trumpet"),
        (57, 57, "trombone"), (58, 58, "tuba"), (59, 59, "trumpet"), (60, 60, "french_horn"),
        (61, 63, "brass"), (64, 67, "saxophone"), (68, 69, "oboe"), (70, 70, "bassoon"),
        (71, 71, "clarinet"), (72, 79, "flute"), (80, 87, "synth_lead"), (88, 95, "synth_pad"),
        (105, 105, "banjo"),
    ]
    for lo, hi, name in table:
        if lo <= p <= hi:
            return name
    return "other"


@dataclass(frozen=True)
class LabelSet:
    """Observed labels: ``present`` and ``absent``; the rest of the vocabulary is unknown."""

    present: frozenset = field(default_factory=frozenset)
    absent: frozenset = field(default_factory=frozenset)

    def __post_init__(self):
        object.__setattr__(self, "present", frozenset(self.present))
        object.__setattr__(self, "absent", frozenset(self.absent))
        both = self.present & self.absent
        if both:
            raise ManifestError(f"labels {sorted(both)} are both present and absent; keep one state per label")

    @classmethod
    def complete(cls, present, vocab) -> "LabelSet":
        """Fully observed: ``present`` are present and every other label is absent."""
        present = frozenset(present)
        return cls(present, frozenset(vocab) - present)

    def state(self, label: str):
        """1 (present), 0 (absent) or None (unknown)."""
        return 1 if label in self.present else 0 if label in self.absent else None

    def unknown(self, vocab) -> list[str]:
        return [v for v in vocab if v not in self.present and v not in self.absent]

    def vector(self, vocab) -> tuple[np.ndarray, np.ndarray]:
        """Multi-hot values and observation mask, each ``(len(vocab),)`` float32."""
        vals = np.array([1.0 if v in self.present else 0.0 for v in vocab], dtype=np.float32)
        mask = np.array([1.0 if (v in self.present or v in self.absent) else 0.0 for v in vocab], dtype=np.float32)
        return vals, mask

    def validate(self, vocab, where: str = "") -> "LabelSet":
        check_labels(sorted(self.present | self.absent), tuple(vocab), where)
        return self

    def to_dict(self, vocab=None) -> dict:
        order = list(vocab) if vocab is not None else sorted(self.present | self.absent)
        key = {v: i for i, v in enumerate(order)}
        srt = lambda s: sorted(s, key=lambda v: (key.get(v, len(key)), v))  # noqa: E731
        return {"present": srt(self.present), "absent": srt(self.absent)}

    @classmethod
    def from_dict(cls, d, where: str = "") -> "LabelSet":
        if not isinstance(d, dict) or set(d) - {"present", "absent"}:
            raise ManifestError(f"{where}: labels must be {{'present': [...], 'absent': [...]}}, got {d!r}")
        return cls(frozenset(d.get("present", ())), frozenset(d.get("absent", ())))
