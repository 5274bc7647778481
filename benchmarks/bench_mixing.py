"""Random-mixing throughput with the full effects chain, on one core.

Prints one JSON object: {"x_realtime_per_core": ..., ...}: seconds of mixture
audio produced per wall second by one process (RandomMixer, self-refine §3.1.1:
chance 0.5 per class, every effect on), for the pedalboard chain (the default)
and for the numpy/scipy version of the same chain, with their ratio. Builds a
small pop corpus first (not timed).

    python benchmarks/bench_mixing.py [--examples 100] [--seconds 2.97]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np

from weakmir.audio.effects import EffectsConfig
from weakmir.data.mixing import RandomMixer, StemPool
from weakmir.data.synth.build import SynthConfig, build_corpus


def throughput(pool, backend: str, n: int, seconds: float) -> float:
    cfg = EffectsConfig(p_compressor=1.0, p_reverb=1.0, p_imaging=1.0, p_loudness=1.0, backend=backend)
    mixer = RandomMixer(pool, seconds=seconds, chance=0.5, effects=cfg)
    mixer.sample(np.random.default_rng(-1 % 2**32))  # warm-up
    t0 = time.perf_counter()
    for i in range(n):
        mixer.sample(np.random.default_rng(i))
    return n * seconds / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=2.97)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        m, _ = build_corpus(d, SynthConfig(preset="pop", tracks=6, seconds=20, jobs=1), progress=False)
        pool = StemPool.from_manifest(m, splits=("train", "valid", "test"))
        pb = throughput(pool, "pedalboard", a.examples, a.seconds)
        npy = throughput(pool, "numpy", a.examples, a.seconds)
        dry = RandomMixer(pool, seconds=a.seconds, effects=None)
        t0 = time.perf_counter()
        for i in range(a.examples):
            dry.sample(np.random.default_rng(i))
        no_fx = a.examples * a.seconds / (time.perf_counter() - t0)
    print(json.dumps({
        "x_realtime_per_core": round(pb, 1),
        "pedalboard_x_realtime": round(pb, 1),
        "numpy_x_realtime": round(npy, 1),
        "pedalboard_vs_numpy": round(pb / npy, 2),
        "no_effects_x_realtime": round(no_fx, 1),
        "examples": a.examples, "segment_seconds": a.seconds, "sample_rate": 44100, "channels": 2,
    }))


if __name__ == "__main__":
    main()
