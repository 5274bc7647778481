"""The MSS modules of majl_wei2024: U-Net (Jansson et al., ISMIR 2017) and ResUNetDecouple+ (Kong et al., ISMIR 2021).

Both read a mono mixture at 16 kHz through an STFT (Hann 2048, hop 320 = 20 ms, centred; the paper's
front end), estimate the voice's complex spectrogram and return its waveform (iSTFT) and magnitude, so
the PE module can read either (:mod:`weakmir.models.pitch_nets`).

* ``unet_jansson``: Jansson's U-Net on the magnitude (the top bin dropped, 1024 bins): an encoder of
  5×5 convolutions with stride 2, batch norm and leaky ReLU (0.2), a decoder of 5×5 transposed
  convolutions with batch norm, ReLU, dropout 0.5 on its first three layers and skip concatenations,
  a sigmoid mask on the mixture magnitude, the mixture phase. Jansson's widths are 16…512 over six
  layers (``channels``); the CPU recipes use fewer and narrower layers. The input is ``log1p`` of the
  magnitude (Jansson scales the magnitude to [0, 1]; the log is our choice, it needs no per-song maximum).
* ``resunet_decouple``: the decoupled magnitude / phase estimation of Kong et al.: a U-Net of residual
  blocks (BN, leaky ReLU, 3×3 conv, twice, with a 1×1 shortcut), down-sampled by 2 per level, whose
  output per bin is a bounded magnitude mask ``M = sigmoid``, a direct magnitude residual ``Q`` and a
  phase rotation ``(P_r, P_i) / |P|``; ``|S| = relu(M |X| + Q)``, ``∠S = ∠X + ∠P``. Kong's model is deep
  (143 residual layers, "+" adds intermediate blocks); ours keeps the decoupling and the residual
  blocks, with ``channels`` and ``blocks`` per level set by the recipe.

Shape (both): ``forward(mix (B, L)) -> {"wave": (B, L), "mag": (B, 1025, T), "spec": (B, 1025, T) complex}``
with ``T = L // 320 + 1``. ``frame_multiple``: the strided layers see frames in groups of this many (the
frame axis is padded to a multiple of it), so a shift of the input by a multiple of ``320 · frame_multiple``
samples shifts the output and any other shift changes it slightly: chunked inference starts its chunks on
that grid (:func:`weakmir.infer.pitch.run`, :class:`weakmir.infer.separate.VoiceAndRest`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..audio.spectral import istft, stft
from . import register

N_FFT, HOP, SAMPLE_RATE = 2048, 320, 16000


class _Front(nn.Module):
    """STFT front end and the padding of the frame axis to a multiple of ``2 ** depth``."""

    sample_rate, n_fft, hop_length = SAMPLE_RATE, N_FFT, HOP

    def spectrum(self, mix: torch.Tensor) -> torch.Tensor:
        if mix.dim() != 2:
            raise ValueError(f"expected a mono batch (batch, time), got {tuple(mix.shape)}")
        return stft(mix, self.n_fft, self.hop_length)  # (B, F, T)

    @staticmethod
    def pad_frames(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int]:
        T = x.shape[-1]
        extra = (-T) % multiple
        return (F.pad(x, (0, extra)) if extra else x), T

    def finish(self, S: torch.Tensor, length: int) -> dict:
        return {"wave": istft(S, self.n_fft, self.hop_length, length=length), "mag": S.abs(), "spec": S}


@register("unet_jansson", "voice_separator")
class UNetJansson(_Front):
    def __init__(self, channels=(16, 32, 64, 128, 256, 512), dropout: float = 0.5):
        super().__init__()
        self.channels, self.dropout = [int(c) for c in channels], float(dropout)
        self.enc, self.dec = nn.ModuleList(), nn.ModuleList()
        ch = 1
        for c in self.channels:
            self.enc.append(nn.Sequential(nn.Conv2d(ch, c, 5, stride=2, padding=2), nn.BatchNorm2d(c), nn.LeakyReLU(0.2)))
            ch = c
        rev = self.channels[::-1]
        for i, c in enumerate(rev[1:] + [1]):
            cin = rev[i] if i == 0 else rev[i] * 2
            last = c == 1 and i == len(rev) - 1
            layers = [nn.ConvTranspose2d(cin, c, 5, stride=2, padding=2, output_padding=1)]
            if not last:
                layers += [nn.BatchNorm2d(c), nn.ReLU()] + ([nn.Dropout(dropout)] if i < 3 else [])
            self.dec.append(nn.Sequential(*layers))

    def kwargs(self) -> dict:
        return {"channels": self.channels, "dropout": self.dropout}

    @property
    def frame_multiple(self) -> int:
        return 2 ** len(self.channels)  # one stride-2 convolution per level

    def forward(self, mix: torch.Tensor) -> dict:
        X = self.spectrum(mix)
        L = mix.shape[-1]
        mag = X.abs()[:, None, :-1]  # (B, 1, 1024, T)
        h, T = self.pad_frames(torch.log1p(mag), self.frame_multiple)
        skips = []
        for layer in self.enc:
            h = layer(h)
            skips.append(h)
        h = skips.pop()
        for i, layer in enumerate(self.dec):
            if i > 0:
                h = torch.cat([h, skips.pop()], dim=1)
            h = layer(h)
        mask = torch.sigmoid(h[..., :T])  # (B, 1, 1024, T)
        mask = F.pad(mask, (0, 0, 0, 1))[:, 0]  # the top bin gets mask 0
        return self.finish(mask * X, L)


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.LeakyReLU(0.01), nn.Conv2d(cin, cout, 3, padding=1),
                                  nn.BatchNorm2d(cout), nn.LeakyReLU(0.01), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        return self.body(x) + self.skip(x)


@register("resunet_decouple", "voice_separator")
class ResUNetDecouple(_Front):
    def __init__(self, channels=(32, 64, 128, 256), blocks: int = 2):
        super().__init__()
        self.channels, self.blocks = [int(c) for c in channels], int(blocks)
        self.stem = nn.Conv2d(1, self.channels[0], 3, padding=1)
        self.enc, self.up, self.dec = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        ch = self.channels[0]
        for c in self.channels:
            self.enc.append(nn.Sequential(*[_ResBlock(ch if b == 0 else c, c) for b in range(self.blocks)]))
            ch = c
        rev = self.channels[::-1]
        for i in range(len(rev) - 1):
            self.up.append(nn.ConvTranspose2d(rev[i], rev[i + 1], 2, stride=2))
            self.dec.append(nn.Sequential(*[_ResBlock(2 * rev[i + 1] if b == 0 else rev[i + 1], rev[i + 1])
                                            for b in range(self.blocks)]))
        self.head = nn.Conv2d(self.channels[0], 4, 1)  # mask, magnitude residual, phase (real, imag)

    def kwargs(self) -> dict:
        return {"channels": self.channels, "blocks": self.blocks}

    @property
    def frame_multiple(self) -> int:
        return 2 ** (len(self.channels) - 1)  # one 2x pooling below each level but the first

    def forward(self, mix: torch.Tensor) -> dict:
        X = self.spectrum(mix)
        L = mix.shape[-1]
        mag = X.abs()[:, None, :-1]
        h, T = self.pad_frames(torch.log1p(mag), self.frame_multiple)
        h = self.stem(h)
        skips = []
        for i, blk in enumerate(self.enc):
            h = blk(h if i == 0 else F.avg_pool2d(h, 2))
            skips.append(h)
        h = skips.pop()
        for up, blk in zip(self.up, self.dec):
            h = blk(torch.cat([up(h), skips.pop()], dim=1))
        out = self.head(h)[..., :T]  # (B, 4, 1024, T)
        m, q = torch.sigmoid(out[:, 0]), out[:, 1]
        pr, pi = out[:, 2], out[:, 3]
        norm = torch.sqrt(pr**2 + pi**2 + 1e-8)
        rot = torch.complex(pr / norm, pi / norm)
        Xc = X[:, :-1]
        S_mag = F.relu(m * Xc.abs() + q)
        S = S_mag * torch.exp(1j * torch.angle(Xc)) * rot
        S = F.pad(S, (0, 0, 0, 1))
        return self.finish(S, L)


__all__ = ["UNetJansson", "ResUNetDecouple", "N_FFT", "HOP", "SAMPLE_RATE"]
