"""Peak memory and speed of `weakmir separate` on a 10-minute stereo 44.1 kHz file.

Prints one JSON object: {"peak_rss_mb_10min": ..., "seconds_per_audio_second": ...}.
Writes a 10-minute FLAC (tones + noise) to a temporary folder, then runs the
CLI in a child process and reads the child's peak resident memory
(``getrusage(RUSAGE_CHILDREN).ru_maxrss``). Model: ``--model`` (default the
untrained ``mask`` separator, or a checkpoint file); the memory bound comes
from streaming chunks, so it holds for any model whose chunk fits.

    python benchmarks/bench_separate.py [--minutes 10] [--model mask] [--chunk-seconds 10]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--model", default="mask")
    ap.add_argument("--chunk-seconds", type=float, default=10.0)
    a = ap.parse_args()
    sr = 44100
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "long.flac"
        rng = np.random.default_rng(0)
        with sf.SoundFile(str(path), "w", samplerate=sr, channels=2, format="FLAC", subtype="PCM_16") as f:
            block = 60 * sr
            for m in range(int(np.ceil(a.minutes))):
                n = min(block, int(a.minutes * 60 * sr) - m * block)
                t = (np.arange(n) + m * block) / sr
                x = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(n)
                f.write(np.stack([x, 0.8 * x], axis=1).astype(np.float32))
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "weakmir", "separate", a.model, str(path), "-o", str(Path(d) / "out"),
                        "--chunk-seconds", str(a.chunk_seconds)], check=True, capture_output=True)
        wall = time.perf_counter() - t0
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        outs = sorted(p.name for p in (Path(d) / "out" / "long").iterdir())
    audio_seconds = a.minutes * 60
    print(json.dumps({"peak_rss_mb_10min": round(peak_kb / 1024, 1),
                      "seconds_per_audio_second": round(wall / audio_seconds, 4),
                      "wall_seconds": round(wall, 1), "audio_seconds": audio_seconds, "model": a.model,
                      "chunk_seconds": a.chunk_seconds, "outputs": outs,
                      "note": "child process peak RSS incl. Python + torch import"}))


if __name__ == "__main__":
    main()
