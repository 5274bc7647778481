"""Corpus rendering speed: audio seconds rendered per wall second, all cores.

Prints one JSON object: {"x_realtime": ..., ...}. Renders both presets into a
temporary folder (default 20 tracks x 20 s each, as in the issue's target).

    python benchmarks/bench_synth.py [--tracks 20] [--seconds 20] [--jobs 0]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from weakmir.data.synth.build import SynthConfig, build_corpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--jobs", type=int, default=0)
    a = ap.parse_args()
    res = {}
    total_audio, total_wall = 0.0, 0.0
    for preset in ("chorale", "pop"):
        with tempfile.TemporaryDirectory() as d:
            cfg = SynthConfig(preset=preset, tracks=a.tracks, seconds=a.seconds, bleed=0.1, wrong_label=0.1,
                              merge=0.1, missing=0.5, jobs=a.jobs)
            t0 = time.perf_counter()
            m, stats = build_corpus(d, cfg, progress=False)
            wall = time.perf_counter() - t0
            audio = sum(t.duration for t in m.tracks)
            res[preset] = {"tracks": a.tracks, "audio_seconds": round(audio, 1), "wall_seconds": round(wall, 2),
                           "x_realtime": round(audio / wall, 1)}
            total_audio += audio
            total_wall += wall
    print(json.dumps({"x_realtime": round(total_audio / total_wall, 1), "cores": os.cpu_count(),
                      "jobs": a.jobs or os.cpu_count(), "note": "mixture seconds per wall second, incl. writing FLAC",
                      **res}))


if __name__ == "__main__":
    main()
