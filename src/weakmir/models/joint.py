"""The Joint Cascade Framework (majl_wei2024 §3, Figure 3) and the Dynamic Weight Module (Figure 4).

* ``majl_jcf``: an MSS module (:mod:`weakmir.models.voice_sep`) whose predicted voice the PE module
  (:mod:`weakmir.models.pitch_nets`) reads; the PE loss's gradient flows back into the MSS module. A
  pipeline (MSS and PE trained apart) is the same object with separately trained parts, so every
  trained system is one checkpoint that ``weakmir pitch`` reads.
* ``majl_dwm``: the Dynamic Weight Module. Input: *predicted_source2Pitch*, *Pitches* (the labels) and
  *target_source2Pitch*, each ``(B, T, N)``, stacked as 3 channels; two 3×3 convolutions with ReLU
  (stride 1), then the map is reduced to one vector per clip — the maximum over the pitch bins, then the
  mean over the frames — where the paper flattens it (its segments have one length; ours have any
  number of frames, and CREPE trains on a few of them) —, standardised by a batch norm (ours). A fully
  connected layer with ReLU and a fully connected layer to ``(ω_mss, ω_pe)`` through ``scale · sigmoid`` with ``scale = 2``: the weights lie in
  (0, 2), are 1 at a zero logit and can exceed 1 (Figure 5 shows weights above 1; a plain sigmoid
  cannot). Why the maximum over bins: what tells the cases apart is whether the peak of one map lies
  where the label's does, wherever that is — a 3×3 filter sees that at the bin where they meet, and the
  maximum keeps it. An earlier version average-pooled the map to a 4 × 8 grid: each pitch vector is one
  narrow peak among 360 bins, so that pool left the features nearly constant over clips (their spread over
  clips 0.0005 against a mean of 0.03) and the weights could not depend on the case (Figure 5 stayed flat
  at 1 whatever the learning rate). Fitted alone on the maps of 240 crops through a U-Net × CREPE, with
  eq. 9–13 and Adam 1e-3, the pooled version's weights stayed at 1.00 for every case after 300 steps;
  max + mean without the batch norm reached ω_mss 1.39 on case 3 after 300 steps (1.00 at 125); with
  it, 1.50 at 125 steps, case 1 at 1.03. In the quick recipe's 126-step Stage I, on fresh crops each step,
  case 3's ω_mss reached 1.09 from scratch; from the recipe's shared warm start it stays within 0.03 of 1
  for every case (README): in a CPU budget it barely moves. A per-frame DWM reading the maps re-centred on
  the label's peak and fitted first on the warm start's maps did reach Table 1's weights in budget, but
  Stage I with it, or with Table 1's weights set by hand, did not beat naive joint learning seed by seed
  (README's table); it is not in the package.

Shapes: ``majl_jcf.forward(mix (B, L), frames=None) -> {"wave": (B, L), "mag": (B, 1025, T), "spec", "pitch":
(B, T, N)}`` (``(B, K, N)`` for a ``frames`` index ``(K,)``);
``majl_dwm.forward(pred (B, T, N), label (B, T, N), target (B, T, N)) -> (B, 2)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeakmirError
from . import REGISTRY, build, register, registered


@register("majl_dwm", "dynamic_weights")
class DynamicWeights(nn.Module):
    def __init__(self, channels=(8, 16), hidden: int = 64, scale: float = 2.0):
        super().__init__()
        self.channels, self.hidden, self.scale = [int(c) for c in channels], int(hidden), float(scale)
        c1, c2 = self.channels
        self.conv = nn.Sequential(nn.Conv2d(3, c1, 3, padding=1), nn.ReLU(), nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU())
        # batch norm on the reduced map: its clip-to-clip differences are small next to its mean (a peak's
        # response is the same wherever the peak lies), and standardised they are what the FC layers read
        self.norm = nn.BatchNorm1d(c2)
        self.fc = nn.Sequential(nn.Linear(c2, self.hidden), nn.ReLU(), nn.Linear(self.hidden, 2))
        nn.init.zeros_(self.fc[-1].weight)
        nn.init.zeros_(self.fc[-1].bias)  # starts at ω = 1 for every case (naive joint learning)

    def kwargs(self) -> dict:
        return {"channels": self.channels, "hidden": self.hidden, "scale": self.scale}

    def forward(self, pred: torch.Tensor, label: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = torch.stack([pred, label, target], dim=1)  # (B, 3, T, N)
        h = self.conv(x).amax(-1).mean(-1)  # (B, c2): max over the pitch bins, mean over the frames
        n = self.norm  # a batch of one in training is standardised by the running statistics
        h = n(h) if h.shape[0] > 1 or not self.training else F.batch_norm(h, n.running_mean, n.running_var, n.weight,
                                                                          n.bias, eps=n.eps)
        return self.scale * torch.sigmoid(self.fc(h))


@register("majl_jcf", "voice_pitch")
class JointCascade(nn.Module):
    def __init__(self, mss: str = "unet_jansson", mss_kwargs: dict | None = None, pe: str = "crepe",
                 pe_kwargs: dict | None = None):
        super().__init__()
        for part, name, role in (("mss", mss, "voice_separator"), ("pe", pe, "pitch_estimator")):
            if name in registered() and REGISTRY[name].role != role:
                known = ", ".join(n for n in registered() if REGISTRY[n].role == role)
                raise WeakmirError(f"majl_jcf: {part} {name!r} is a {REGISTRY[name].role}; give a {role} ({known})")
        self.mss_name, self.pe_name = mss, pe
        self.mss = build(mss, **(mss_kwargs or {}))
        self.pe = build(pe, **(pe_kwargs or {}))
        self.sample_rate, self.hop_length = self.mss.sample_rate, self.mss.hop_length

    def kwargs(self) -> dict:
        return {"mss": self.mss_name, "mss_kwargs": self.mss.kwargs(), "pe": self.pe_name, "pe_kwargs": self.pe.kwargs()}

    @property
    def grid(self):
        return self.pe.grid

    @property
    def frame_multiple(self) -> int:
        """The MSS module's (:mod:`weakmir.models.voice_sep`): chunks start on multiples of this many hops."""
        return self.mss.frame_multiple

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
