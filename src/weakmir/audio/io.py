"""Audio file IO with soundfile, resampling with soxr.

Arrays are ``(channels, time)`` float32. Reading supports whatever libsndfile
reads (wav, flac, ogg, mp3, aiff). Writing is atomic: the file is written to a
temporary name in the same folder and renamed, so a crash never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..errors import AudioError, notice
from ..files import atomic_path

_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3", ".aiff": "AIFF", ".aif": "AIFF"}


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: no such audio file; check the path (or re-create the corpus)")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file; pass the file inside it")


DECODE_ERRORS = (sf.LibsndfileError, RuntimeError, TypeError)  # what soundfile raises on a file it cannot read


def decode_error(path, e: Exception, at: float | None = None) -> AudioError:
    """The one-line error for audio soundfile could not decode (``at``: where, in seconds)."""
    where = "" if at is None else f" at {at:.1f} s"
    return AudioError(f"{path}: cannot decode audio{where} ({e}); it may be truncated or corrupt: re-export it as "
                      "wav or flac")


def _opened(path: Path, how=sf.info):
    """``how(path)`` (``sf.info`` or ``sf.SoundFile``) of an existing file, or the one-line decode error."""
    _check_exists(path)
    try:
        return how(str(path))
    except DECODE_ERRORS as e:
        raise decode_error(path, e) from e


def info(path: str | os.PathLike) -> tuple[int, int, int]:
    """Return ``(sample_rate, channels, frames)`` without reading samples."""
    i = _opened(Path(path))
    return int(i.samplerate), int(i.channels), int(i.frames)


@dataclass(frozen=True)
class AudioInfo:
    """What :func:`check` found: ``sample_rate`` (Hz), ``channels``, ``frames`` (the readable ones)."""

    path: Path
    sample_rate: int
    channels: int
    frames: int


def check(path: str | os.PathLike, sample_rate: int | None = None, channels: int | None = None,
          max_channels: int | None = None) -> AudioInfo:
    """Check an audio file a user gave before any work, without reading it all.

    Refused with one line naming the file and the fix: missing, a folder, empty (0 bytes), not
    decodable, no samples, a decode error near its end (a truncated FLAC / MP3 / OGG), or more than
    ``max_channels`` channels. Said with :func:`weakmir.errors.notice` (the conversions a later
    :func:`load` makes): a WAV shorter than its header says (read as the length it holds), a rate
    other than ``sample_rate`` (resampled), a channel count other than ``channels`` (duplicated or
    averaged; any other change is refused as :func:`to_channels` does).
    """
    path = Path(path)
    _check_exists(path)
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: is empty (0 bytes); re-export or re-copy it")
    try:
        i = sf.info(str(path))
        with sf.SoundFile(str(path)) as f:  # decode the last block: a file cut short fails here
            if f.seekable() and f.frames > 0:
                f.seek(max(0, f.frames - 4096))
                f.read(4096, dtype="float32")
    except DECODE_ERRORS as e:
        raise decode_error(path, e) from e
    sr, c, frames = int(i.samplerate), int(i.channels), int(i.frames)
    if frames <= 0:
        raise AudioError(f"{path}: holds no samples; re-export it")
    m = re.search(r"^data : (\d+) \(should be (\d+)\)", i.extra_info or "", re.M)
    if m and int(m.group(1)) > int(m.group(2)):
        block = re.search(r"Block Align\s*:\s*(\d+)", i.extra_info)
        declared = int(m.group(1)) // int(block.group(1)) if block and int(block.group(1)) else frames
        notice(f"{path}: truncated: its header promises {declared / sr:.2f} s, the file holds {frames / sr:.2f} s; "
               f"read as {frames / sr:.2f} s")
    if max_channels is not None and c > max_channels:
        raise AudioError(f"{path}: has {c} channels, at most {max_channels} are supported; downmix it to mono or "
                         "stereo first")
    if channels is not None and c != channels:
        notice(f"{path}: {c} channel{'s' if c > 1 else ''}, {channel_change(c, channels, path)} to {channels}")
    if sample_rate is not None and sr != sample_rate:
        notice(f"{path}: {sr} Hz, resampled to {sample_rate} Hz")
    return AudioInfo(path, sr, c, frames)


def _finite(x: np.ndarray, path) -> np.ndarray:
    if not np.isfinite(x).all():
        raise AudioError(f"{path}: contains NaN or infinite samples; re-render or repair the file")
    return x


def load(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    channels: int | None = None,
) -> tuple[np.ndarray, int]:
    """Read a whole audio file.

    Args:
        path: wav/flac/ogg/mp3/aiff file.
        sample_rate: resample to this rate (soxr, high quality) when given.
        channels: convert to this many channels when given (see :func:`to_channels`).

    Returns:
        ``(audio, sample_rate)``; audio has shape ``(channels, time)``, float32.
    """
    path = Path(path)
    _check_exists(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except DECODE_ERRORS as e:
        raise decode_error(path, e) from e
    if data.shape[0] == 0:
        raise AudioError(f"{path}: holds no samples; re-export it")
    x = _finite(np.ascontiguousarray(data.T), path)
    if sample_rate is not None and sample_rate != sr:
        x = resample(x, sr, sample_rate)
        sr = sample_rate
    if channels is not None:
        x = to_channels(x, channels, path=path)
    return x, int(sr)


def load_mono(path: str | os.PathLike, sample_rate: int, block_seconds: float = 30.0) -> np.ndarray:
    """Read a whole file as mono at ``sample_rate``, streaming: ``block_seconds`` at a time are averaged to
    mono and resampled (a soxr VHQ stream, as :func:`resample`), so only the mono result is ever whole.
    :func:`load` holds the file's own rate and channels twice over (a 30-minute 44.1 kHz stereo file: ~1.3
    GB); the result is :func:`load`'s ``(path, sample_rate, 1)`` up to float rounding.

    Shape: ``-> (time,)`` float32.
    """
    path = Path(path)
    with _opened(path, sf.SoundFile) as f:
        sr_in, total = int(f.samplerate), int(f.frames)
        if total == 0:
            raise AudioError(f"{path}: holds no samples; re-export it")
        stream = soxr.ResampleStream(sr_in, sample_rate, 1, dtype="float32", quality="VHQ") if sr_in != sample_rate else None
        out = np.empty(int(np.ceil(total * sample_rate / sr_in)) + 64, np.float32)
        n, block = 0, max(int(block_seconds * sr_in), 1)
        while True:
            at = f.tell()
            try:
                data = f.read(block, dtype="float32", always_2d=True)
            except DECODE_ERRORS as e:
                raise decode_error(path, e, at=at / sr_in) from e
            last = f.tell() >= total or len(data) == 0
            mono = _finite(data, path).mean(axis=1, dtype=np.float32)
            y = stream.resample_chunk(mono, last=last) if stream is not None else mono
            out[n:n + len(y)] = y
            n += len(y)
            if last:
                return out[:n]


def read_segment(path: str | os.PathLike, start: int, frames: int) -> np.ndarray:
    """Read ``frames`` samples from ``start`` (in the file's own rate).

    Returns:
        ``(channels, frames)`` float32; zero-padded past the end of file.
    """
    path = Path(path)
    try:
        with sf.SoundFile(str(path)) as f:
            f.seek(max(0, int(start)))
            data = f.read(int(frames), dtype="float32", always_2d=True, fill_value=0.0)
    except DECODE_ERRORS as e:
        _check_exists(path)
        raise decode_error(path, e) from e
    return _finite(np.ascontiguousarray(data.T), path)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample ``(channels, time)`` audio with soxr (VHQ)."""
    if sr_in == sr_out:
        return x
    y = soxr.resample(np.ascontiguousarray(x.T), sr_in, sr_out, quality="VHQ")
    return np.ascontiguousarray(y.T, dtype=np.float32)


def to_channels(x: np.ndarray, channels: int, path=None) -> np.ndarray:
    """Convert ``(c, time)`` to ``(channels, time)``.

    Mono to many duplicates the channel; many to mono averages; other changes
    (e.g. 6 -> 2) are refused because any choice would be a guess.
    """
    c = x.shape[0]
    if c == channels:
        return x
    if channel_change(c, channels, path) == "duplicated":
        return np.repeat(x, channels, axis=0)
    return x.mean(axis=0, keepdims=True)


def channel_change(c: int, channels: int, path=None) -> str:
    """How :func:`to_channels` turns ``c`` channels into ``channels`` (``c != channels``): ``"duplicated"``
    (from mono) or ``"averaged"`` (to mono); any other change is refused, naming ``path``."""
    if c == 1:
        return "duplicated"
    if channels == 1:
        return "averaged"
    where = f"{path}: " if path is not None else ""
    raise AudioError(f"{where}has {c} channels, expected {channels}; downmix it to mono or stereo first")


def save(
    path: str | os.PathLike,
    audio: np.ndarray,
    sample_rate: int,
    subtype: str | None = None,
) -> Path:
    """Write ``(channels, time)`` audio atomically (temp file + rename).

    Args:
        subtype: libsndfile subtype (``"PCM_16"``, ``"FLOAT"``...); the
            format's default when None. Integer subtypes refuse samples
            outside [-1, 1] instead of clipping silently.
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"{path}: unknown audio extension; use one of {', '.join(sorted(_FORMATS))}")
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    _finite(x, path)
    if (subtype or "PCM").startswith("PCM") and x.size and np.abs(x).max() > 1.0:
        raise AudioError(f"{path}: samples exceed [-1, 1] and would clip; normalise first or save as float wav")
    with atomic_path(path) as tmp:
        sf.write(tmp, x.T, int(sample_rate), format=fmt, subtype=subtype)
    return path
