"""Read Native Instruments stem files (``.stem.mp4``, MUSDB18) with PyAV.

libsndfile cannot read AAC in MP4; PyAV (FFmpeg's decoders as a Python wheel,
no ffmpeg binary needed) can. MUSDB18's streams: 0 mixture, 1 drums, 2 bass,
3 other, 4 vocals, each 44.1 kHz stereo AAC.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import AudioError

MUSDB_STREAMS = ("mixture", "drums", "bass", "other", "vocals")


def read_stems(path: str | os.PathLike, streams: list[int] | None = None) -> tuple[np.ndarray, int]:
    """Decode audio streams of an MP4 stem file.

    Returns:
        ``(audio, sample_rate)``; audio ``(streams, channels, time)`` float32,
        all streams cut to the shortest one.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such stem file; check the path")
    try:
        import av
    except ImportError as e:
        raise AudioError(f"{path}: decoding .stem.mp4 needs PyAV; run: pip install av") from e
    try:
        with av.open(str(path)) as probe:
            n = len(probe.streams.audio)
        idx = list(range(n)) if streams is None else list(streams)
        out, rate = [], None
        for i in idx:
            if not 0 <= i < n:
                raise AudioError(f"{path}: has {n} audio streams, asked for stream {i}")
            with av.open(str(path)) as c:
                st = c.streams.audio[i]
                rate = st.rate
                chunks = [f.to_ndarray() for f in c.decode(st)]
            x = np.concatenate(chunks, axis=1).astype(np.float32)  # planar float: (channels, time)
            out.append(x)
    except AudioError:
        raise
    except Exception as e:  # av.error.* on corrupt input
        raise AudioError(f"{path}: cannot decode stem file ({e}); re-download or re-encode it") from e
    T = min(x.shape[1] for x in out)
    return np.stack([x[:, :T] for x in out]), int(rate)
