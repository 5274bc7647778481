import struct
import zlib

import numpy as np

from weakmir.report.images import colorize, png_bytes, spectrogram_image


def _decode(png: bytes):
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(png):
        n = struct.unpack(">I", png[pos:pos + 4])[0]
        kind, data = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", png[pos + 8 + n:pos + 12 + n])[0]
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF
        chunks[kind] = data
        pos += 12 + n
    w, h = struct.unpack(">II", chunks[b"IHDR"][:8])
    raw = zlib.decompress(chunks[b"IDAT"])
    rows = np.frombuffer(raw, np.uint8).reshape(h, 1 + 3 * w)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(h, w, 3)


def test_png_round_trip():
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(_decode(png_bytes(img)), img)
    assert colorize(np.array([[0.0, 1.0]])).tolist() == [[[0, 0, 4], [252, 255, 164]]]


def test_tone_is_bright_at_its_row():
    sr = 16000
    t = np.arange(2 * sr) / sr
    img = spectrogram_image(np.sin(2 * np.pi * 1000 * t)[None], sr, width=50, height=60)
    assert img.shape == (60, 50, 3)
    brightness = img.astype(float).sum(axis=(1, 2))
    rows = np.geomspace(40.0, sr / 2, 60)[::-1]  # top row = highest frequency
    assert abs(rows[int(np.argmax(brightness))] - 1000) / 1000 < 0.1
