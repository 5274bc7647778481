"""A VGGish-shaped embedding network: 0.96 s of 16 kHz mono audio -> 128 values.

OpenMIC-2018 ships VGGish features (Hershey et al. 2017; weak-mic_gururani_thesis Appendix B: a VGG-like
CNN trained on 8 M YouTube clips, one 128-d vector per 0.96 s). No pretrained VGGish can be downloaded
here, so for audio without provided features weakmir uses this network, pretrained by
:func:`weakmir.methods.weak_mic.pretrain_embedding` on a corpus disjoint from the tagging corpus and then
frozen (transfer, as VGGish is). What it was trained on is in its checkpoint's config.

The front end is VGGish's: 64 mel bands (125-7500 Hz) of a 25 ms Hann window, 10 ms hop, log(mel + 0.01),
96 frames per 0.96 s example. The body is four conv blocks (3x3 conv, batch norm, ReLU, 2x2 max pool;
``channels``), a mean over time and frequency, and one FC layer to ``dim`` (the embedding, ReLU); a linear
``classes``-way head on it is what pretraining trains (strong, window-level instrument labels).

Shapes: ``forward`` ``(batch, 15360)`` samples -> ``(batch, dim)``; ``logmel`` ``(batch, samples)`` ->
``(batch, 1, 64, 96)``; ``logits`` ``(batch, 15360)`` -> ``(batch, classes)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import register

SAMPLE_RATE = 16000
HOP = 160
WINDOW = 400
FRAMES = 96
EXAMPLE = HOP * FRAMES  # 15 360 samples = 0.96 s


@register("mel_embedding", "embedding")
class MelEmbedding(nn.Module):
    """See the module docstring."""

    def __init__(self, n_mels: int = 64, channels: tuple = (16, 32, 64, 128), dim: int = 128, classes: int = 20):
        super().__init__()
        self._kwargs = {"n_mels": n_mels, "channels": list(channels), "dim": dim, "classes": classes}
        import librosa

        mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=512, n_mels=n_mels, fmin=125.0, fmax=7500.0, htk=True)
        self.register_buffer("mel", torch.from_numpy(mel.astype(np.float32)))
        self.register_buffer("window", torch.hann_window(WINDOW))
        blocks, c = [], 1
        for ch in channels:
            blocks += [nn.Conv2d(c, ch, 3, padding=1), nn.BatchNorm2d(ch), nn.ReLU(), nn.MaxPool2d(2)]
            c = ch
        self.body = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, dim)
        self.head = nn.Linear(dim, classes)
        self.dim = dim

    def kwargs(self) -> dict:
        return dict(self._kwargs)

    def logmel(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, samples)`` -> ``(batch, 1, n_mels, 96)`` log-mel of the first 0.96 s (zero-padded)."""
        if x.shape[-1] < EXAMPLE:
            x = torch.nn.functional.pad(x, (0, EXAMPLE - x.shape[-1]))
        spec = torch.stft(x[..., :EXAMPLE], 512, HOP, WINDOW, self.window, center=True, return_complex=True)
        power = spec.abs() ** 2  # (batch, 257, 97)
        mel = torch.matmul(self.mel, power[..., :FRAMES])
        return torch.log(mel + 0.01).unsqueeze(1)

    def embed_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, n_mels, 96)`` log-mel -> ``(batch, dim)``."""
        h = self.body(mel).mean(dim=(2, 3))
        return torch.relu(self.fc(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 15360)`` samples at 16 kHz -> ``(batch, dim)``."""
        return self.embed_mel(self.logmel(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 15360)`` -> ``(batch, classes)`` (the pretraining head)."""
        return self.head(self.forward(x))


def instances(audio: np.ndarray) -> np.ndarray:
    """A mono 16 kHz signal ``(samples,)`` cut into non-overlapping 0.96 s examples ``(n, 15360)``, as
    VGGish frames a clip (a 10-s clip gives 10; the rest shorter than 0.96 s is dropped; a signal shorter
    than one example is zero-padded to one)."""
    x = np.asarray(audio, dtype=np.float32)
    n = max(1, len(x) // EXAMPLE)
    if len(x) < n * EXAMPLE:
        x = np.pad(x, (0, n * EXAMPLE - len(x)))
    return x[:n * EXAMPLE].reshape(n, EXAMPLE)


def embed_audio(model: MelEmbedding, audio: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Instance features ``(n, dim)`` of a mono 16 kHz signal ``(samples,)`` (:func:`instances`)."""
    ex = torch.from_numpy(instances(audio))
    model.eval()
    with torch.no_grad():
        return torch.cat([model(ex[i:i + batch_size]) for i in range(0, len(ex), batch_size)]).numpy()
