"""Chunked separation: any length, bounded memory, overlap-add with crossfade.

Each chunk of ``chunk`` samples is run with ``context`` extra samples read on
both sides (less at the file's edges: never beyond the file, so the model
handles the edges as in a whole-file run), the context is dropped, and consecutive chunks overlap by ``overlap`` samples that are
cross-faded with complementary linear ramps. Chunk starts and the context are
multiples of the model's ``stride`` (its STFT hop), so frames fall on the
whole-file grid. With ``context`` at least the model's receptive field the
result equals a whole-file run up to float rounding; for models with unbounded context (RNNs, attention) the crossfade
hides the seams, as in Demucs' ``apply_model``.

:func:`separate_array` works on an in-memory array; :func:`separate_file`
streams: it reads chunk by chunk with soundfile and writes each source
incrementally to a temporary file renamed at the end, so peak memory depends
on the chunk size, not on the file's length.

A MAJL voice separator (``voice_separator``, e.g. a pipeline's ``pipeline_mss.ckpt``, or the MSS module
of a ``majl_jcf`` checkpoint) separates through :class:`VoiceAndRest`: ``vocals`` (its estimate) and
``accompaniment`` (the mixture minus it), mono at 16 kHz (:func:`as_separator`).

Shapes: mixture ``(channels, time)`` -> sources ``(sources, channels, time)``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ..audio.io import DECODE_ERRORS, decode_error, resample, to_channels
from ..errors import AudioError, WeakmirError
from ..files import atomic_path


class VoiceAndRest(torch.nn.Module):
    """A voice separator as a two-source separator: ``vocals`` (its estimate) and ``accompaniment`` (the
    mixture minus the estimate, so the two sum to the input), mono at the separator's rate. Chunks run with
    one second of context (``receptive_field``), as :func:`weakmir.infer.pitch.run` runs a ``majl_jcf``, and
    start on its frame grid (``stride``: hop × the module's ``frame_multiple``).

    Shape: ``forward(mix (B, 1, L)) -> (B, 2, 1, L)``.
    """

    sources = ("vocals", "accompaniment")
    audio_channels = 1

    def __init__(self, mss: torch.nn.Module):
        super().__init__()
        self.mss = mss
        self.sample_rate, self.stride = mss.sample_rate, mss.hop_length * mss.frame_multiple
        self.receptive_field = mss.sample_rate
        self.resample_margin = 64 * mss.hop_length  # what 64 strides are for a separator whose stride is its hop

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        voice = self.mss(mix[:, 0])["wave"][:, None]  # (B, 1, L)
        return torch.stack([voice, mix - voice], dim=1)


ROLES = ("separator", "voice_separator", "voice_pitch")  # the checkpoints weakmir separate reads


def as_separator(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` as :func:`separate_file` runs it: a ``separator`` as it is, a ``voice_separator`` or the
    MSS module of a ``voice_pitch`` (``majl_jcf``) in :class:`VoiceAndRest`, in eval mode."""
    role = getattr(model, "role", None)
    if role not in ROLES:
        raise WeakmirError(f"a {role} model does not separate; give one of {', '.join(ROLES)}")
    if role == "separator":
        return model
    return VoiceAndRest(model.mss if role == "voice_pitch" else model).eval()


def _weights(n: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    w = np.ones(n, np.float32)
    if overlap > 0:
        ramp = (np.arange(1, overlap + 1, dtype=np.float32)) / (overlap + 1)
        if not first:
            w[:overlap] = ramp
        if not last:
            w[-overlap:] = ramp[::-1]
    return w


class _Chunker:
    """Yields ``(start, stop)`` of chunks with ``hop = chunk - overlap``."""

    def __init__(self, total: int, chunk: int, overlap: int):
        if chunk <= overlap:
            raise WeakmirError(f"chunk ({chunk} samples) must be longer than the overlap ({overlap})")
        self.total, self.chunk, self.overlap = total, chunk, overlap

    def __iter__(self):
        hop = self.chunk - self.overlap
        s = 0
        while True:
            e = min(s + self.chunk, self.total)
            yield s, e
            if e >= self.total:
                return
            s += hop


def _align(model, chunk: int, overlap: int, context: int) -> tuple[int, int, int]:
    """Chunk starts and context on multiples of the model's ``stride`` (e.g. its STFT hop):
    a frame-based model only reproduces a whole-file run on the same frame grid."""
    stride = int(getattr(model, "stride", 1))
    step = max(stride, -(-(chunk - overlap) // stride) * stride)
    context = -(-context // stride) * stride
    return step + overlap, overlap, context


def _run(model, x: np.ndarray, device: str) -> np.ndarray:
    with torch.no_grad():
        y = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None].to(device))
    return y[0].cpu().numpy()


def separate_array(model, mix: np.ndarray, chunk: int, overlap: int, context: int, device: str = "cpu") -> np.ndarray:
    """Chunked separation of an in-memory mixture ``(C, T)`` -> ``(S, C, T)``."""
    C, T = mix.shape
    chunk, overlap, context = _align(model, chunk, overlap, context)
    out = np.zeros((len(model.sources), C, T), np.float32)
    chunks = list(_Chunker(T, chunk, overlap))
    for k, (s, e) in enumerate(chunks):
        a, b = max(0, s - context), min(T, e + context)  # never beyond the file: edges as a whole-file run
        y = _run(model, mix[:, a:b], device)[..., s - a:s - a + (e - s)]
        w = _weights(e - s, overlap, k == 0, k == len(chunks) - 1)
        out[..., s:e] += y * w
    return out


def separate_file(model, path: str | os.PathLike, out_dir: str | os.PathLike, chunk_seconds: float = 10.0,
                  overlap_seconds: float = 1.0, context_seconds: float | None = None, device: str = "cpu",
                  subtype: str = "FLOAT", normalize_lufs: float | None = None) -> dict[str, Path]:
    """Separate an audio file into ``out_dir/<source>.wav`` with bounded memory.

    ``normalize_lufs``: scale the input to this integrated loudness first (measured
    streaming, :func:`weakmir.audio.loudness.file_loudness`) and the outputs back by
    the inverse gain, for separators trained at a fixed loudness (self-refine: −14 LUFS).

    The file is read at its own rate and resampled per chunk when it differs
    from the model's (with extra margin, so chunk seams are not resampling
    seams). Returns ``{source: path}``.
    """
    path, out_dir = Path(path), Path(out_dir)
    if not path.exists():
        raise AudioError(f"{path}: no such audio file; check the path")
    try:
        f = sf.SoundFile(str(path))
    except DECODE_ERRORS as e:
        raise decode_error(path, e) from e
    gain = 1.0
    if normalize_lufs is not None:
        from ..audio.loudness import file_loudness

        lufs = file_loudness(path)
        if np.isfinite(lufs):
            gain = float(10 ** ((normalize_lufs - lufs) / 20))
    sr_in, sr = f.samplerate, model.sample_rate
    C = model.audio_channels
    rf = getattr(model, "receptive_field", sr // 2)
    context = int(round((context_seconds if context_seconds is not None else max(rf / sr, 0.5)) * sr))
    chunk, overlap = int(round(chunk_seconds * sr)), int(round(overlap_seconds * sr))
    chunk, overlap, context = _align(model, chunk, overlap, context)
    stride = int(getattr(model, "stride", 1))
    margin = -(-int(getattr(model, "resample_margin", 64 * stride)) // stride) * stride  # resampling margin, on the frame grid
    total = int(round(f.frames * sr / sr_in))
    final = {name: out_dir / f"{name}.wav" for name in model.sources}
    try:
        # each stem streams into a temporary file; leaving the stack closes every writer and then
        # publishes its file, an error removes them all (atomic_path), so no half-written stem remains
        with contextlib.ExitStack() as stack:
            writers = {}
            for name, dest in final.items():
                tmp = stack.enter_context(atomic_path(dest))
                writers[name] = stack.enter_context(
                    sf.SoundFile(tmp, "w", samplerate=sr, channels=C, format="WAV", subtype=subtype))
            chunks = list(_Chunker(total, chunk, overlap))
            carry = None  # weighted tail of the previous chunk (overlap samples)
            for k, (s, e) in enumerate(chunks):
                # model-rate span: chunk + context (+ a resampling margin), never beyond the file
                a, b = max(0, s - context - margin), min(total, e + context + margin)
                ia, ib = int(np.floor(a * sr_in / sr)), min(int(np.ceil(b * sr_in / sr)), f.frames)
                try:
                    f.seek(ia)
                    data = f.read(ib - ia, dtype="float32", always_2d=True).T
                except DECODE_ERRORS as e:
                    raise decode_error(path, e, at=ia / sr_in) from e
                if not np.isfinite(data).all():
                    raise AudioError(f"{path}: contains NaN or infinite samples; repair the file")
                x = to_channels(data, C, path=path)
                if sr_in != sr:
                    x = resample(x, sr_in, sr)
                x = np.pad(x, ((0, 0), (0, max(0, (b - a) - x.shape[1]))))[:, :b - a]
                y = _run(model, x * np.float32(gain), device)[..., s - a:s - a + (e - s)] / np.float32(gain)
                w = _weights(e - s, overlap, k == 0, k == len(chunks) - 1)
                y = y * w
                if carry is not None:
                    y[..., :overlap] += carry
                last = k == len(chunks) - 1
                keep = y if last else y[..., : (e - s) - overlap]
                carry = None if last else y[..., (e - s) - overlap:]
                for i, name in enumerate(model.sources):
                    writers[name].write(keep[i].T)
        return final
    finally:
        f.close()
