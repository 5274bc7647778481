"""CrossNet-Open-Unmix (X-UMX; Sawata, Uhlich, Takahashi, Mitsufuji, ICASSP 2021).

Open-Unmix (Stöter et al. 2019) per source — magnitude STFT cropped to
``max_bin``, input standardisation, ``fc1 + BatchNorm + tanh``, a 3-layer
bidirectional LSTM with a skip connection, ``fc2 + BN + ReLU``, ``fc3 + BN``,
output scaling and a ReLU mask on the mixture magnitude — with X-UMX's two
bridging paths: the sources' ``fc1`` outputs are averaged before the LSTMs, and
the sources' ``[fc1 | LSTM]`` features are averaged before ``fc2``. Estimates
are the masked mixture STFT with the mixture phase, back in time.

Written here: Asteroid's XUMX refuses torch 2, and openunmix has no X-UMX. As
in self-refine_koo2023 §4.2 the multi-domain and combination losses are not
used (train with :func:`weakmir.methods.self_refine.separation_loss`,
``domain="tf"``). ``hidden=512, n_fft=4096, hop=1024`` is the paper's size;
the default is a CPU size.

Shape: ``(batch, channels, time) -> (batch, sources, channels, time)``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..audio.spectral import istft, stft
from . import register


class _Branch(nn.Module):
    def __init__(self, n_in: int, n_out: int, hidden: int, layers: int):
        super().__init__()
        self.fc1 = nn.Sequential(nn.Linear(n_in, hidden, bias=False), nn.BatchNorm1d(hidden), nn.Tanh())
        self.lstm = nn.LSTM(hidden, hidden // 2, num_layers=layers, bidirectional=True, batch_first=False,
                            dropout=0.4 if layers > 1 else 0.0)
        self.fc2 = nn.Sequential(nn.Linear(2 * hidden, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU())
        self.fc3 = nn.Sequential(nn.Linear(hidden, n_out, bias=False), nn.BatchNorm1d(n_out))


@register("xumx", "separator")
class XUMX(nn.Module):
    def __init__(self, sources=("vocals", "bass", "drums", "other"), audio_channels: int = 2,
                 sample_rate: int = 44100, n_fft: int = 2048, hop_length: int = 512, hidden: int = 128,
                 layers: int = 3, max_bin: int | None = None):
        super().__init__()
        self.sources = list(sources)
        self.audio_channels, self.sample_rate = int(audio_channels), int(sample_rate)
        self.n_fft, self.hop_length, self.hidden = int(n_fft), int(hop_length), int(hidden)
        self.n_bins = self.n_fft // 2 + 1
        # Open-Unmix's bandwidth: 16 kHz at 44.1 kHz
        self.max_bin = int(max_bin) if max_bin else min(self.n_bins, int(16000 / (sample_rate / 2) * self.n_bins))
        C = self.audio_channels
        self.branches = nn.ModuleList([_Branch(self.max_bin * C, self.n_bins * C, hidden, layers) for _ in self.sources])
        S = len(self.sources)
        self.input_mean = nn.Parameter(torch.zeros(S, self.max_bin))
        self.input_scale = nn.Parameter(torch.ones(S, self.max_bin))
        self.output_scale = nn.Parameter(torch.ones(S, self.n_bins))
        self.output_mean = nn.Parameter(torch.ones(S, self.n_bins))
        self.stride = self.hop_length

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        if mix.dim() != 3 or mix.shape[1] != self.audio_channels:
            raise ValueError(f"expected (batch, {self.audio_channels}, time), got {tuple(mix.shape)}")
        B, C, T = mix.shape
        X = stft(mix, self.n_fft, self.hop_length)  # (B, C, F, N)
        mag = X.abs()
        N = mag.shape[-1]
        x = mag[:, :, : self.max_bin].permute(3, 0, 1, 2)  # (N, B, C, bins)
        # fc1 per source, then the first bridge: average over sources
        enc = []
        for s, br in enumerate(self.branches):
            h = (x + self.input_mean[s]) * self.input_scale[s]
            h = br.fc1[0](h.reshape(N * B, C * self.max_bin))
            enc.append(br.fc1[2](br.fc1[1](h)).reshape(N, B, self.hidden))
        cross1 = torch.stack(enc).mean(0)
        # LSTM per source with skip, then the second bridge
        feats = [torch.cat([cross1, br.lstm(cross1)[0]], dim=-1) for br in self.branches]
        cross2 = torch.stack(feats).mean(0).reshape(N * B, 2 * self.hidden)
        masks = []
        for s, br in enumerate(self.branches):
            h = br.fc3(br.fc2(cross2)).reshape(N, B, C, self.n_bins)
            h = torch.relu(h * self.output_scale[s] + self.output_mean[s])
            masks.append(h.permute(1, 2, 3, 0))  # (B, C, F, N)
        M = torch.stack(masks, dim=1)  # (B, S, C, F, N)
        return istft(M * X.unsqueeze(1), self.n_fft, self.hop_length, length=T)
