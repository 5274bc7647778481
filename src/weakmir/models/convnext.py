"""ConvNeXt instrument classifier Ψ (self-refine_koo2023 §3.1, §4.2).

ConvNeXt (Liu et al., CVPR 2022) over a stereo linear-magnitude spectrogram,
computed inside the model (n_fft 2048, hop 512 at 44.1 kHz; input 2.97 s),
with one sigmoid output per stem class. ``preset="tiny"`` is the paper's
ConvNeXt-T (depths 3-3-9-3, widths 96-192-384-768: 27.8 M parameters with a
2-channel input and 4 outputs); ``preset="small"`` (1-1-2-1, 16-32-64-128) trains
on 2 CPU cores in minutes. Written in plain torch (no torchvision/timm).

Differences from the paper: none in the architecture; the paper does not say
how the magnitude is scaled, we feed ``log1p(|X|)`` when ``log_magnitude=True``
(the default is linear, as written). The residual branches start at
ConvNeXt's layer scale 1e-6 for ``tiny``; ``small`` starts at 0.1, because a
branch scaled by 1e-6 barely moves in the few hundred steps a CPU run has
(the classifier stayed near chance in 150 steps). ``small`` also pools over
time only and keeps the frequency rows for the head (``pool="time"``): a
shallow network cannot recover absolute frequency (bass vs. chords) after a
global average, the deep ``tiny`` can from its receptive field and padding.

Shape: ``(batch, channels, time) -> (batch, classes)`` probabilities.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..audio.spectral import stft
from . import register

PRESETS = {"tiny": ((3, 3, 9, 3), (96, 192, 384, 768)), "small": ((1, 1, 2, 1), (16, 32, 64, 128))}


@dataclass(frozen=True)
class ConvNeXtConfig:
    preset: str = "small"
    classes: tuple = ("vocals", "bass", "drums", "other")
    audio_channels: int = 2
    sample_rate: int = 44100
    n_fft: int = 2048
    hop_length: int = 512
    segment_seconds: float = 2.97
    drop_path: float = 0.0
    log_magnitude: bool = False
    layer_scale: float | None = None  # initial residual scale; None: 1e-6 for "tiny" (ConvNeXt's), 0.1 for "small"
    pool: str | None = None  # "global" (ConvNeXt's) or "time" (keep frequency); None: global for tiny, time for small


class _LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels of a ``(B, C, H, W)`` tensor."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _Block(nn.Module):
    def __init__(self, dim: int, drop_path: float, layer_scale: float = 1e-6):
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1, self.act, self.pw2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(layer_scale * torch.ones(dim))
        self.drop_path = drop_path

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(self.act(self.pw1(self.norm(y)))) * self.gamma
        y = y.permute(0, 3, 1, 2)
        if self.training and self.drop_path > 0:
            keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device) >= self.drop_path
            y = y * keep / (1 - self.drop_path)
        return x + y


@register("convnext", "classifier")
class ConvNeXtClassifier(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        if "classes" in kwargs:
            kwargs["classes"] = tuple(kwargs["classes"])
        cfg = ConvNeXtConfig(**kwargs)
        if cfg.preset not in PRESETS:
            raise ValueError(f"unknown ConvNeXt preset {cfg.preset!r}; use one of {', '.join(PRESETS)}")
        self.config = cfg
        self.classes = list(cfg.classes)
        self.audio_channels, self.sample_rate = cfg.audio_channels, cfg.sample_rate
        self.segment = int(round(cfg.segment_seconds * cfg.sample_rate))
        depths, dims = PRESETS[cfg.preset]
        self.downsample = nn.ModuleList([nn.Sequential(nn.Conv2d(cfg.audio_channels, dims[0], 4, stride=4),
                                                       _LayerNorm2d(dims[0], eps=1e-6))])
        for i in range(3):
            self.downsample.append(nn.Sequential(_LayerNorm2d(dims[i], eps=1e-6),
                                                 nn.Conv2d(dims[i], dims[i + 1], 2, stride=2)))
        rates = torch.linspace(0, cfg.drop_path, sum(depths)).tolist()
        scale = cfg.layer_scale if cfg.layer_scale is not None else (1e-6 if cfg.preset == "tiny" else 0.1)
        self.stages, k = nn.ModuleList(), 0
        for i, d in enumerate(depths):
            self.stages.append(nn.Sequential(*[_Block(dims[i], rates[k + j], scale) for j in range(d)]))
            k += d
        self.pool = cfg.pool or ("global" if cfg.preset == "tiny" else "time")
        if self.pool not in ("global", "time"):
            raise ValueError(f"unknown pooling {cfg.pool!r}; use 'global' or 'time'")
        features = dims[-1]
        if self.pool == "time":  # frequency rows left after the stride-4 stem and three stride-2 downsamplings
            rows = cfg.n_fft // 2 + 1
            for k in (4, 2, 2, 2):
                rows = (rows - k) // k + 1
            features *= rows
        self.norm = nn.LayerNorm(features, eps=1e-6)
        self.head = nn.Linear(features, len(self.classes))
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)

    def kwargs(self) -> dict:
        d = asdict(self.config)
        d["classes"] = list(d["classes"])
        return d

    def spectrogram(self, audio: torch.Tensor) -> torch.Tensor:
        """``(B, C, T) -> (B, C, freq, frames)`` magnitude."""
        mag = stft(audio, self.config.n_fft, self.config.hop_length).abs()
        return torch.log1p(mag) if self.config.log_magnitude else mag

    def logits(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.dim() != 3 or audio.shape[1] != self.audio_channels:
            raise ValueError(f"expected (batch, {self.audio_channels}, time), got {tuple(audio.shape)}")
        x = self.spectrogram(audio)
        for down, stage in zip(self.downsample, self.stages):
            x = stage(down(x))
        x = x.mean(dim=(-2, -1)) if self.pool == "global" else x.mean(dim=-1).flatten(1)
        return self.head(self.norm(x))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(audio))
