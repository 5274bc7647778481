"""Transcribe audio with a trained transcriptor: one MIDI file per instrument and a piano-roll image.

    notes = transcribe_file(model, "song.wav", "out/song")
    # out/song/piano.mid, out/song/guitar.mid, ..., out/song/pianoroll.png

The whole file is transcribed in one pass (the TCN's receptive field spans
±765 frames, ~24 s at the paper's hop, so chunking would need that much
context anyway); a note is a run of frames with probability above
``threshold`` lasting at least ``min_frames``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..audio.io import load_mono
from ..errors import WeakmirError
from ..files import atomic_path, atomic_write_bytes


def transcribe_array(model, audio: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Piano-roll probabilities: audio ``(channels, time)`` at the model's rate -> ``(instruments, 88, frames)``."""
    x = torch.from_numpy(np.asarray(audio, np.float32).mean(axis=0, keepdims=True))[None].to(device)
    with torch.no_grad():
        return model.transcribe(x)[0].cpu().numpy()


def write_midi(path, notes_per_instrument: dict, programs: dict | None = None) -> Path:
    """One MIDI file holding one track per ``{name: (n, 4) notes}``; written atomically."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    for name, notes in notes_per_instrument.items():
        inst = pretty_midi.Instrument(program=int((programs or {}).get(name, 0)), name=name)
        for on, off, pitch, vel in np.asarray(notes, dtype=float).reshape(-1, 4):
            inst.notes.append(pretty_midi.Note(int(np.clip(vel, 1, 127)), int(pitch), float(on), float(off)))
        pm.instruments.append(inst)
    with atomic_path(path) as tmp:
        pm.write(tmp)
    return Path(path)


def pianoroll_png(probs: np.ndarray, frame_rate: float, names, title: str = "transcription") -> bytes:
    """Note probabilities ``(I, 88, frames)`` as a matplotlib figure (one panel per instrument, time in
    seconds against MIDI pitch, a colour bar): PNG bytes."""
    from ..report.figures import piano_roll

    return piano_roll(probs, frame_rate, names, title)


def transcribe_file(model, path, out_dir, threshold: float = 0.5, min_frames: int = 2, device: str = "cpu") -> dict:
    """Transcribe ``path`` into ``out_dir``: ``<instrument>.mid`` each and ``pianoroll.png``.

    Returns ``{instrument: (n, 4) notes}``.
    """
    from ..metrics.transcription import roll_to_notes

    if not hasattr(model, "transcribe"):
        raise WeakmirError(f"{type(model).__name__} is not a transcriptor; pass a tcn_transcriptor checkpoint")
    probs = transcribe_array(model, load_mono(path, model.sample_rate)[None], device)  # read mono, streaming
    fps = model.sample_rate / model.hop_length
    notes = {name: roll_to_notes(probs[i], fps, threshold, min_frames) for i, name in enumerate(model.instruments)}
    out_dir = Path(out_dir)
    for name, n in notes.items():
        write_midi(out_dir / f"{name}.mid", {name: n})
    atomic_write_bytes(out_dir / "pianoroll.png", pianoroll_png(probs, fps, model.instruments, Path(path).name))
    return notes


__all__ = ["transcribe_array", "transcribe_file", "write_midi", "pianoroll_png"]
