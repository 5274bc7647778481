"""Render score parts to audio with FluidSynth and a General MIDI SoundFont.

One stem per part: the synthesizer is reset between parts, FluidSynth's own
reverb and chorus are off (the mixing-effects chain is ours to apply), and
samples come out as float32 (``fluid_synth_write_float``), so nothing clips or
is quantised inside the renderer. A :class:`Renderer` may hold several
SoundFonts; each part names the one it plays (``Part.soundfont``, an index),
so one track can mix patches recorded from different instruments.

Besides files, :func:`find_soundfont` knows the names in :data:`BUNDLED`:
``TimGM6mb`` is the small GM SoundFont (MuseScore 1.3) that ships inside the
``pretty_midi`` wheel, whose woodwind and string samples are not FluidR3's.

Shapes: a rendered part is ``(2, frames)`` float32 (FluidSynth is stereo).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import SoundFontError

SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
BLOCK = 64  # FLUID_BUFSIZE
APT_HINT = "apt-get install -y --no-install-recommends fluidsynth fluid-soundfont-gm"


def _pretty_midi_soundfont() -> Path:
    import pretty_midi

    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


BUNDLED = {"TimGM6mb": _pretty_midi_soundfont}  # name -> where a Python dependency keeps it


@dataclass
class Part:
    """One instrument part of a score.

    ``notes`` is ``(n, 4)``: onset s, offset s, MIDI pitch, velocity (1-127).
    ``pan`` in [-1, 1]. ``name`` is the stem id.
    """

    name: str
    program: int
    instrument: str
    notes: np.ndarray
    is_drum: bool = False
    bank: int = 0  # the SoundFont bank (GS variations: 8, 16, ...; the drum channel always plays bank 128)
    soundfont: int = 0  # index into the renderer's SoundFonts
    pan: float = 0.0
    gain_db: float = 0.0
    meta: dict = field(default_factory=dict)


def keep_stretches(notes: np.ndarray, plays: np.ndarray, stretch: float) -> np.ndarray:
    """The notes ``(n, 4)`` whose onset falls in a stretch of ``stretch`` seconds that plays:
    ``plays (n_stretches,)`` bool, stretch ``k`` = ``[k, k + 1) * stretch``; onsets past the last
    stretch count in it. A voice keeps every note of a stretch or none."""
    return notes[plays[np.minimum((notes[:, 0] / stretch).astype(int), len(plays) - 1)]]


def presets(path) -> set[tuple[int, int]]:
    """The ``(bank, program)`` presets a SoundFont holds, read from its ``phdr`` chunk (the drum kits are
    bank 128). Empty when the file has no preset header."""
    import struct

    data = Path(path).read_bytes()
    i = data.find(b"phdr")
    if i < 0:
        return set()
    n = struct.unpack("<I", data[i + 4:i + 8])[0] // 38
    recs = (data[i + 8 + 38 * k:i + 8 + 38 * (k + 1)] for k in range(n - 1))  # the last record is the terminal
    return {struct.unpack("<HH", r[20:24])[::-1] for r in recs}


def check_soundfont(path: Path) -> Path:
    """``path`` when it starts like a SoundFont 2 file (a RIFF ``sfbk`` chunk), before FluidSynth is asked
    to load it (which prints its own errors and fails late)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError as e:
        raise SoundFontError(f"{path}: cannot read the SoundFont ({e.strerror or e}); check its permissions") from e
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise SoundFontError(f"{path}: not a SoundFont 2 file (no RIFF sfbk header); pass a General MIDI .sf2 file "
                             "to --soundfont")
    return path


def find_soundfont(path: str | os.PathLike | None = None) -> Path:
    """The SoundFont to use: ``path`` (a file or a name in :data:`BUNDLED`), else
    ``$WEAKMIR_SOUNDFONT``, else a Debian default."""
    if path is not None and str(path) in BUNDLED:
        p = BUNDLED[str(path)]()
        if not p.is_file():
            raise SoundFontError(f"{p}: the SoundFont {path} is missing from its package; reinstall it (make install)")
        return p
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise SoundFontError(f"{p}: SoundFont not found; pass an existing .sf2 file to --soundfont")
        return check_soundfont(p)
    env = os.environ.get("WEAKMIR_SOUNDFONT")
    if env:
        p = Path(env)
        if not p.is_file():
            raise SoundFontError(f"{p} (from $WEAKMIR_SOUNDFONT): SoundFont not found; fix or unset the variable")
        return check_soundfont(p)
    for c in SOUNDFONT_CANDIDATES:
        if Path(c).is_file():
            return Path(c)
    raise SoundFontError(f"no General MIDI SoundFont found (looked in {', '.join(SOUNDFONT_CANDIDATES)}); run: {APT_HINT} (as root), or pass --soundfont FILE.sf2")


def _import_fluidsynth():
    try:
        import fluidsynth
    except ImportError as e:  # pyfluidsynth raises ImportError when libfluidsynth is missing
        raise SoundFontError(f"the FluidSynth library cannot be loaded ({e}); run: {APT_HINT} (as root) and pip install pyfluidsynth") from e
    return fluidsynth


class Renderer:
    """A FluidSynth instance with one or more SoundFonts loaded (``soundfont``: a path or a list of them).

    Determinism: FluidSynth's output for a part depends slightly on what the
    synth rendered before (voices are pooled and keep some state). A render is
    therefore a function of the synth's history; :meth:`render_parts` starts a
    fresh synth for each call (≈0.12 s to load FluidR3_GM), so a track's audio
    depends only on the track, never on other tracks or on ``--jobs``.
    """

    def __init__(self, soundfont: str | os.PathLike | list, sample_rate: int = 44100, gain: float = 0.5,
                 dynamic: bool = False):
        self._fs = _import_fluidsynth()
        # dynamic: samples are read when a preset first plays, so a fresh synth costs ~0.03 s instead of
        # ~0.15 s (FluidR3_GM); drum hits then differ by up to ~-40 dB from a synth that loaded everything,
        # so the presets made before it (chorale, pop, slakh) keep loading everything
        self.dynamic = bool(dynamic)
        self.sample_rate = int(sample_rate)
        self.soundfonts = [Path(p) for p in (soundfont if isinstance(soundfont, (list, tuple)) else [soundfont])]
        self.gain = gain
        self.synth = None
        self.reset()

    def reset(self) -> None:
        """Start over with a fresh synth (same SoundFont)."""
        fs = self._fs
        if self.synth is not None:
            self.synth.delete()
        self.synth = fs.Synth(gain=self.gain, samplerate=float(self.sample_rate),
                              **{"synth.reverb.active": 0, "synth.chorus.active": 0,
                                 "synth.dynamic-sample-loading": int(self.dynamic)})
        self.sfids = []
        for p in self.soundfonts:
            self.sfids.append(self.synth.sfload(str(p)))
            if self.sfids[-1] == -1:
                raise SoundFontError(f"{p}: not a valid SoundFont (.sf2); pass a General MIDI .sf2 file to --soundfont")
        self._rendered = 0
        self._write = fs.cfunc(
            "fluid_synth_write_float", ctypes.c_int,
            ("synth", ctypes.c_void_p, 1), ("len", ctypes.c_int, 1),
            ("lout", ctypes.c_void_p, 1), ("loff", ctypes.c_int, 1), ("lincr", ctypes.c_int, 1),
            ("rout", ctypes.c_void_p, 1), ("roff", ctypes.c_int, 1), ("rincr", ctypes.c_int, 1),
        )
        self._warm_up()

    def _block(self, n: int) -> np.ndarray:
        buf = np.zeros(2 * n, dtype=np.float32)
        if n > 0:
            ptr = buf.ctypes.data
            self._write(self.synth.synth, n, ptr, 0, 2, ptr, 1, 2)
            self._rendered += n
        return buf.reshape(n, 2).T

    def _drain(self, limit_seconds: float = 30.0) -> None:
        """Render until the output is exactly zero (release tails of the last
        part are over), then to a multiple of FluidSynth's 64-sample block:
        events take effect at block boundaries, so every part must start at
        the same block phase for its render to be identical whatever was
        rendered before it."""
        n = 0
        while n < limit_seconds * self.sample_rate:
            n += 2048
            if not np.any(self._block(2048)):
                break
        self._block((-self._rendered) % BLOCK)

    def _warm_up(self) -> None:
        """A fresh synth renders its very first note slightly differently from
        every later one; play one note so all real renders see the same state."""
        self.synth.program_select(0, self.sfids[0], 0, 0)
        self.synth.noteon(0, 60, 64)
        self._block(2048)
        self.synth.noteoff(0, 60)
        self.synth.system_reset()
        self._drain()

    def render_parts(self, parts: list[Part], frames: int) -> list[np.ndarray]:
        """Render parts in order on a fresh synth; each ``(2, frames)`` float32."""
        self.reset()
        return [self.render(p, frames) for p in parts]

    def render(self, part: Part, frames: int) -> np.ndarray:
        """Render one part to exactly ``frames`` samples, shape ``(2, frames)``."""
        s = self.synth
        s.system_reset()
        self._drain()
        chan = 9 if part.is_drum else 0
        sfid = self.sfids[part.soundfont]
        if part.is_drum:
            s.program_select(9, sfid, 128, 0)
        else:
            s.program_select(0, sfid, int(part.bank), int(part.program))
        s.cc(chan, 7, 100)
        s.cc(chan, 10, int(np.clip(round(64 + 63 * part.pan), 0, 127)))
        events = []
        for on, off, p, v in np.asarray(part.notes).reshape(-1, 4):
            events.append((on, 1, int(p), int(np.clip(v, 1, 127))))
            events.append((off, 0, int(p), 0))
        events.sort(key=lambda e: (e[0], e[1]))
        pos, chunks = 0, []
        for t, kind, p, v in events:
            k = min(int(round(t * self.sample_rate)), frames)
            if k > pos:
                chunks.append(self._block(k - pos))
                pos = k
            if kind:
                s.noteon(chan, p, v)
            else:
                s.noteoff(chan, p)
        if pos < frames:
            chunks.append(self._block(frames - pos))
        out = np.concatenate(chunks, axis=1) if chunks else np.zeros((2, frames), np.float32)
        return out[:, :frames] * np.float32(10 ** (part.gain_db / 20.0))
