"""Hybrid Demucs (Défossez 2021, "Demucs v3") from the maintained ``demucs`` package.

Only the model class is used (``demucs.hdemucs.HDemucs``); demucs' pretrained
downloads and its torchaudio-based IO are not. ``channels=48`` (the package
default, 83.6 M parameters) is the paper's size; ``channels=8`` (2.4 M) trains
on CPU. The wrapper exposes ``sample_rate``, ``sources``, ``audio_channels`` for
chunked inference.

Shape: ``(batch, channels, time) -> (batch, sources, channels, time)``.
"""

from __future__ import annotations

from torch import nn

from ..errors import WeakmirError
from . import register


@register("hdemucs", "separator")
class HDemucsSeparator(nn.Module):
    def __init__(self, sources=("vocals", "bass", "drums", "other"), audio_channels: int = 2,
                 sample_rate: int = 44100, channels: int = 8, **hdemucs_kwargs):
        super().__init__()
        try:
            from demucs.hdemucs import HDemucs
        except ImportError as e:
            raise WeakmirError(f"Hybrid Demucs needs the demucs package ({e}); run: pip install demucs") from e
        self.sources = list(sources)
        self.audio_channels, self.sample_rate = int(audio_channels), int(sample_rate)
        self.net = HDemucs(sources=self.sources, audio_channels=self.audio_channels, samplerate=self.sample_rate,
                           channels=channels, **hdemucs_kwargs)

    def forward(self, mix):
        if mix.dim() != 3 or mix.shape[1] != self.audio_channels:
            raise ValueError(f"expected (batch, {self.audio_channels}, time), got {tuple(mix.shape)}")
        return self.net(mix)
