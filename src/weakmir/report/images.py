"""Small images without a plotting library: a PNG encoder and spectrogram thumbnails.

PNG: 8-bit RGB, no interlace, filter 0 per row, zlib-compressed (the standard
library's zlib and crc32). Spectrograms: log-magnitude STFT of the channel mean,
frequency axis log-spaced (low at the bottom), 80 dB range, a dark-to-bright
colour ramp.
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

_RAMP = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21],
                  [250, 193, 39], [252, 255, 164]], dtype=float)


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode ``(height, width, 3)`` uint8 as PNG."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[i].tobytes() for i in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def colorize(values: np.ndarray) -> np.ndarray:
    """Map ``(h, w)`` values in [0, 1] to ``(h, w, 3)`` uint8 with the colour ramp."""
    v = np.clip(np.nan_to_num(values), 0, 1) * (len(_RAMP) - 1)
    i = np.minimum(v.astype(int), len(_RAMP) - 2)
    f = (v - i)[..., None]
    return ((1 - f) * _RAMP[i] + f * _RAMP[i + 1]).astype(np.uint8)


def spectrogram_image(audio: np.ndarray, sample_rate: int, width: int = 240, height: int = 80,
                      n_fft: int = 2048, max_seconds: float = 30.0) -> np.ndarray:
    """A ``(height, width, 3)`` spectrogram thumbnail of ``(channels, time)`` audio (first ``max_seconds``)."""
    x = np.atleast_2d(np.asarray(audio, dtype=np.float64)).mean(axis=0)[: int(max_seconds * sample_rate)]
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    hop = max(1, (len(x) - n_fft) // max(1, width - 1))
    starts = np.arange(width) * hop
    starts = np.minimum(starts, len(x) - n_fft)
    frames = x[starts[:, None] + np.arange(n_fft)[None]] * np.hanning(n_fft)
    mag = np.abs(np.fft.rfft(frames, axis=1))  # (width, bins)
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    rows = np.geomspace(40.0, sample_rate / 2, height)
    idx = np.clip(np.searchsorted(freqs, rows), 1, len(freqs) - 1)
    db = 20 * np.log10(mag[:, idx].T + 1e-10)  # (height, width)
    norm = (db - (db.max() - 80.0)) / 80.0
    return colorize(norm[::-1])


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()
