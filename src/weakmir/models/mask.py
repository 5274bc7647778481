"""A small spectrogram-mask separator.

Magnitude STFT of the (stereo) mixture -> a stack of 2-D convolutions over
(freq, time) -> one sigmoid mask per source and channel -> masked complex STFT
-> iSTFT. Its receptive field is finite (``receptive_field`` samples), so
chunked inference with at least that much context reproduces a whole-file run.
``MaskSeparator(hidden=8, layers=2)`` is the tiny untrained model the CLI
tests load by name (like demucs' ``demucs_unittest``).

Shape: ``(batch, channels, time) -> (batch, sources, channels, time)``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..audio.spectral import istft, stft
from . import register


@register("mask", "separator")
class MaskSeparator(nn.Module):
    def __init__(self, sources=("vocals", "bass", "drums", "other"), audio_channels: int = 2,
                 sample_rate: int = 44100, n_fft: int = 1024, hop_length: int = 256, hidden: int = 16,
                 layers: int = 3, kernel: int = 3):
        super().__init__()
        self.sources = list(sources)
        self.audio_channels, self.sample_rate = int(audio_channels), int(sample_rate)
        self.n_fft, self.hop_length = int(n_fft), int(hop_length)
        S, C = len(self.sources), self.audio_channels
        mods, ch = [], C
        for _ in range(layers):
            mods += [nn.Conv2d(ch, hidden, kernel, padding=kernel // 2), nn.ReLU()]
            ch = hidden
        mods += [nn.Conv2d(ch, S * C, 1)]
        self.net = nn.Sequential(*mods)
        frames = layers * (kernel // 2)  # time-frame radius of the conv stack
        self.receptive_field = frames * self.hop_length + self.n_fft
        self.stride = self.hop_length  # outputs are frame-grid dependent: chunk on multiples of the hop

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        if mix.dim() != 3 or mix.shape[1] != self.audio_channels:
            raise ValueError(f"expected (batch, {self.audio_channels}, time), got {tuple(mix.shape)}")
        B, C, T = mix.shape
        X = stft(mix, self.n_fft, self.hop_length)  # (B, C, F, N)
        mag = torch.log1p(X.abs())
        masks = torch.sigmoid(self.net(mag)).view(B, len(self.sources), C, *X.shape[-2:])
        Y = masks * X.unsqueeze(1)
        return istft(Y, self.n_fft, self.hop_length, length=T)
