"""Windowed classification of a whole stem (self-refine_koo2023 §4.2).

The classifier runs on windows of its input size with a hop of a quarter
window; the window outputs are averaged and thresholded (0.9 in the paper).
A stem shorter than one window is zero-padded to one window.

Shape: audio ``(channels, time)`` -> probabilities ``(classes,)``.
"""

from __future__ import annotations

import numpy as np
import torch


def window_starts(length: int, window: int, hop: int) -> list[int]:
    """Starts of windows covering ``length`` samples (the last one flush with the end)."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, hop))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def classify(model, audio: np.ndarray, hop_fraction: float = 0.25, batch_size: int = 16, device: str = "cpu") -> np.ndarray:
    """Average of the window probabilities, ``(classes,)``."""
    window = model.segment
    hop = max(1, int(round(window * hop_fraction)))
    x = np.asarray(audio, dtype=np.float32)
    if x.shape[1] < window:
        x = np.pad(x, ((0, 0), (0, window - x.shape[1])))
    starts = window_starts(x.shape[1], window, hop)
    probs = []
    with torch.no_grad():
        for i in range(0, len(starts), batch_size):
            batch = np.stack([x[:, s:s + window] for s in starts[i:i + batch_size]])
            probs.append(model(torch.from_numpy(batch).to(device)).cpu().numpy())
    return np.concatenate(probs).mean(axis=0)


def decide(probs: np.ndarray, classes, threshold=0.9) -> list[str]:
    """Labels whose probability reaches ``threshold`` (scalar or per class); at least the top one."""
    thr = np.broadcast_to(np.asarray(threshold, dtype=float), probs.shape)
    labels = [c for c, p, t in zip(classes, probs, thr) if p >= t]
    return labels or [classes[int(np.argmax(probs))]]
