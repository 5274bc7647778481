"""The Joint Cascade Framework (majl_wei2024 §3, Figure 3) and the Dynamic Weight Module (Figure 4).

* ``majl_jcf``: an MSS module (:mod:`weakmir.models.voice_sep`) whose predicted voice the PE module
  (:mod:`weakmir.models.pitch_nets`) reads; the PE loss's gradient flows back into the MSS module. A
  pipeline (MSS and PE trained apart) is the same object with separately trained parts, so every
  trained system is one checkpoint that ``weakmir pitch`` reads.
* ``majl_dwm``: the Dynamic Weight Module. Input: *predicted_source2Pitch*, *Pitches* (the labels) and
  *target_source2Pitch*, each ``(B, T, N)``, stacked as 3 channels; two 3×3 convolutions with ReLU
  (stride 2, our choice: the paper's figure gives no strides and a flatten of the full ``T × N`` map
  is large), an adaptive average pool to a fixed ``pool`` grid (so any clip length flattens to one
  size — the paper's fixed-length segments need no pool), flatten, a fully connected layer with ReLU
  and a fully connected layer to ``(ω_mss, ω_pe)`` through ``scale · sigmoid`` with ``scale = 2``:
  the weights lie in (0, 2), are 1 at a zero logit and can exceed 1 (Figure 5 shows weights above 1;
  a plain sigmoid cannot).

Shapes: ``majl_jcf.forward(mix (B, L), frames=None) -> {"wave": (B, L), "mag": (B, 1025, T), "spec", "pitch":
(B, T, N)}`` (``(B, K, N)`` for a ``frames`` index ``(K,)``);
``majl_dwm.forward(pred (B, T, N), label (B, T, N), target (B, T, N)) -> (B, 2)``.
"""

from __future__ import annotations

import torch
from torch import nn

from . import build, register


@register("majl_dwm", "dynamic_weights")
class DynamicWeights(nn.Module):
    def __init__(self, channels=(8, 16), hidden: int = 64, pool=(4, 8), scale: float = 2.0):
        super().__init__()
        self.channels, self.hidden, self.pool, self.scale = [int(c) for c in channels], int(hidden), tuple(int(p) for p in pool), float(scale)
        c1, c2 = self.channels
        self.conv = nn.Sequential(nn.Conv2d(3, c1, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(self.pool))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c2 * self.pool[0] * self.pool[1], self.hidden), nn.ReLU(),
                                nn.Linear(self.hidden, 2))
        nn.init.zeros_(self.fc[-1].weight)
        nn.init.zeros_(self.fc[-1].bias)  # starts at ω = 1 for every case (naive joint learning)

    def kwargs(self) -> dict:
        return {"channels": self.channels, "hidden": self.hidden, "pool": list(self.pool), "scale": self.scale}

    def forward(self, pred: torch.Tensor, label: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = torch.stack([pred, label, target], dim=1)
        return self.scale * torch.sigmoid(self.fc(self.conv(x)))


@register("majl_jcf", "voice_pitch")
class JointCascade(nn.Module):
    def __init__(self, mss: str = "unet_jansson", mss_kwargs: dict | None = None, pe: str = "crepe",
                 pe_kwargs: dict | None = None):
        super().__init__()
        self.mss_name, self.pe_name = mss, pe
        self.mss = build(mss, **(mss_kwargs or {}))
        self.pe = build(pe, **(pe_kwargs or {}))
        self.sample_rate, self.hop_length = self.mss.sample_rate, self.mss.hop_length

    def kwargs(self) -> dict:
        return {"mss": self.mss_name, "mss_kwargs": self.mss.kwargs(), "pe": self.pe_name, "pe_kwargs": self.pe.kwargs()}

    @property
    def grid(self):
        return self.pe.grid

    def pitch_of(self, wave: torch.Tensor, mag: torch.Tensor | None = None, frames=None) -> torch.Tensor:
        """PE on a voice waveform ``(B, L)`` (its magnitude computed when not given) -> ``(B, T, N)`` (``(B, K, N)``
        for a ``frames`` index ``(K,)``)."""
        if mag is None:
            mag = self.mss.spectrum(wave).abs()
        return self.pe(wave, mag, frames)

    def forward(self, mix: torch.Tensor, frames=None) -> dict:
        out = self.mss(mix)
        out["pitch"] = self.pe(out["wave"], out["mag"], frames)
        return out


__all__ = ["DynamicWeights", "JointCascade"]
