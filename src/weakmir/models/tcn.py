"""Temporal convolutional networks of score-supervised_hung2021 §3.2.

One TCN body — ``repeats`` (3) × ``blocks`` (8) dilated residual blocks,
kernel 3, dilation ``2**b`` within a repeat (Conv-TasNet's block: 1×1 conv,
PReLU, layer norm, depthwise dilated conv, PReLU, layer norm, 1×1 conv,
residual) — over magnitude-spectrogram frames, with three heads:

* :class:`TCNTranscriptor` (``"tcn_transcriptor"``): a sigmoid piano roll per
  instrument, ``(batch, freq, frames) -> (batch, instruments, 88, frames)``
  (MIDI 21..108).
* :class:`TCNClassifier` (``"tcn_classifier"``): the baseline critic of §3.3
  (Pishdadian et al.): the same body, the last layer → frame-wise instrument
  activity, ``(batch, freq, frames) -> (batch, instruments, frames)``.
* :class:`TCNSeparator` (``"tcn_separator"``): a sigmoid TF mask per
  instrument. :meth:`TCNSeparator.masks` and :meth:`TCNSeparator.separate_magnitude`
  work on spectrograms (training, where the critic reads the separated
  magnitudes); ``forward`` works on audio like every weakmir separator —
  ``(batch, 1, time) -> (batch, instruments, 1, time)``, the masked magnitudes
  with the mixture phase through the iSTFT — so ``weakmir separate`` runs it.

Spectrograms: square-root Hann analysis window (§3.2), magnitude.  The paper's
preset is n_fft 2048, hop 500 at 16 kHz (``n_fft=2048, hop_length=500``); the
CPU default is n_fft 1024, hop 500 with a narrower body. The network reads
``log1p(|X|)`` (the paper does not say how the magnitude is scaled; a
logarithm keeps the input in a range a TCN trains on) while masks act on
the linear magnitude.

Receptive field: each repeat adds ``2 * (2**blocks - 1)`` frames, so the
body sees ±765 frames. The layer norms work frame by frame (Conv-TasNet's
non-causal gLN normalises over the whole input, which would tie every frame to
every other); so chunked inference with that much context is exact, shorter
context only approximates it. The paper does not name its normalisation.

The input ``log1p(|X|)`` goes to the first 1×1 convolution unnormalised (as
in open-unmix, whose input scaling is fixed per bin, not per frame): a
per-frame norm there made every head blind to level — a step-1 transcriptor
read a piano stem at −60 dB as piano with the same probability as at 0 dB —
so a critic could not tell a separated source from a faint leak of it. With
the level heard, the score-supervised quick run's best separator rose from
3.99 to 4.59 dB SI-SDR and the step-1 piano note accuracy from 0.33 to 0.42
(:mod:`weakmir.experiments.score_supervised`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..audio.spectral import istft, stft
from . import register

N_NOTES = 88
LOWEST_MIDI = 21


class _FrameNorm(nn.GroupNorm):
    """Layer norm over channels, frame by frame: ``(B, C, T)``. Per frame (not Conv-TasNet's global
    gLN over channels *and* time) so that an output frame depends only on its receptive field and
    chunked inference with enough context equals a whole-file run."""

    def __init__(self, channels: int, eps: float = 1e-8):
        super().__init__(1, channels, eps=eps)

    def forward(self, x):
        B, C, T = x.shape
        y = super().forward(x.transpose(1, 2).reshape(B * T, C, 1))
        return y.reshape(B, T, C).transpose(1, 2)


class _Block(nn.Module):
    def __init__(self, channels: int, hidden: int, dilation: int, kernel: int = 3):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(channels, hidden, 1), nn.PReLU(), _FrameNorm(hidden),
            nn.Conv1d(hidden, hidden, kernel, dilation=dilation, padding=dilation * (kernel // 2), groups=hidden),
            nn.PReLU(), _FrameNorm(hidden), nn.Conv1d(hidden, channels, 1))

    def forward(self, x):
        return x + self.net(x)


class TCN(nn.Module):
    """The shared body: ``(batch, in_features, frames) -> (batch, out_features, frames)``."""

    def __init__(self, in_features: int, out_features: int, channels: int = 128, hidden: int = 256,
                 repeats: int = 3, blocks: int = 8, kernel: int = 3):
        super().__init__()
        self.inp = nn.Conv1d(in_features, channels, 1)  # no input norm: the critic must hear the level
        self.blocks = nn.Sequential(*[_Block(channels, hidden, 2 ** b, kernel)
                                      for _ in range(repeats) for b in range(blocks)])
        self.out = nn.Sequential(nn.PReLU(), nn.Conv1d(channels, out_features, 1))
        self.receptive_frames = 1 + repeats * (kernel - 1) * (2 ** blocks - 1)

    def forward(self, x):
        return self.out(self.blocks(self.inp(x)))


class _SpectrogramModel(nn.Module):
    """Common STFT settings and input checks of the three TCN heads."""

    def __init__(self, instruments, sample_rate: int, n_fft: int, hop_length: int, channels: int, hidden: int,
                 repeats: int, blocks: int, out_per_instrument: int):
        super().__init__()
        self.instruments = list(instruments)
        self.sources = self.instruments
        self.audio_channels, self.sample_rate = 1, int(sample_rate)
        self.n_fft, self.hop_length = int(n_fft), int(hop_length)
        self.n_bins = self.n_fft // 2 + 1
        # to the orthonormal STFT's scale (Σ w² = n_fft / 2 for the sqrt-Hann window): the score-supervised
        # mixture losses read magnitudes at this scale (weakmir.methods.score_supervised, "Magnitude scale")
        self.magnitude_scale = (2.0 / self.n_fft) ** 0.5
        self.tcn = TCN(self.n_bins, len(self.instruments) * out_per_instrument, channels, hidden, repeats, blocks)
        self.stride = self.hop_length
        self.receptive_field = self.tcn.receptive_frames * self.hop_length + self.n_fft
        self._kwargs = dict(instruments=self.instruments, sample_rate=self.sample_rate, n_fft=self.n_fft,
                            hop_length=self.hop_length, channels=channels, hidden=hidden, repeats=repeats,
                            blocks=blocks)

    def kwargs(self) -> dict:
        return dict(self._kwargs)

    def spectrogram(self, audio: torch.Tensor) -> torch.Tensor:
        """Complex sqrt-Hann STFT: ``(batch, 1, time) -> (batch, freq, frames)``."""
        if audio.dim() != 3 or audio.shape[1] != 1:
            raise ValueError(f"expected mono audio (batch, 1, time), got {tuple(audio.shape)}")
        return stft(audio[:, 0], self.n_fft, self.hop_length, "sqrt_hann")

    def _check(self, mag: torch.Tensor) -> None:
        if mag.dim() != 3 or mag.shape[1] != self.n_bins:
            raise ValueError(f"expected a magnitude spectrogram (batch, {self.n_bins}, frames), got {tuple(mag.shape)}")

    def _features(self, mag: torch.Tensor) -> torch.Tensor:
        self._check(mag)
        return self.tcn(torch.log1p(mag))


@register("tcn_transcriptor", "transcriptor")
class TCNTranscriptor(_SpectrogramModel):
    """Piano roll per instrument: ``(batch, freq, frames) -> (batch, instruments, 88, frames)`` probabilities."""

    def __init__(self, instruments=("piano", "guitar", "bass"), sample_rate: int = 16000, n_fft: int = 1024,
                 hop_length: int = 500, channels: int = 64, hidden: int = 128, repeats: int = 3, blocks: int = 8):
        super().__init__(instruments, sample_rate, n_fft, hop_length, channels, hidden, repeats, blocks, N_NOTES)

    def logits(self, mag: torch.Tensor) -> torch.Tensor:
        y = self._features(mag)
        return y.view(y.shape[0], len(self.instruments), N_NOTES, y.shape[-1])

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(mag))

    def transcribe(self, audio: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, time) -> (batch, instruments, 88, frames)`` probabilities."""
        return self(self.spectrogram(audio).abs())


@register("tcn_classifier", "classifier")
class TCNClassifier(_SpectrogramModel):
    """Frame-wise instrument activity: ``(batch, freq, frames) -> (batch, instruments, frames)``."""

    def __init__(self, instruments=("piano", "guitar", "bass"), sample_rate: int = 16000, n_fft: int = 1024,
                 hop_length: int = 500, channels: int = 64, hidden: int = 128, repeats: int = 3, blocks: int = 8):
        super().__init__(instruments, sample_rate, n_fft, hop_length, channels, hidden, repeats, blocks, 1)

    def logits(self, mag: torch.Tensor) -> torch.Tensor:
        return self._features(mag)

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(mag))


@register("tcn_separator", "separator")
class TCNSeparator(_SpectrogramModel):
    """TF masks per instrument; audio in, audio out for inference (see module docstring)."""

    def __init__(self, instruments=("piano", "guitar", "bass"), sample_rate: int = 16000, n_fft: int = 1024,
                 hop_length: int = 500, channels: int = 64, hidden: int = 128, repeats: int = 3, blocks: int = 8):
        super().__init__(instruments, sample_rate, n_fft, hop_length, channels, hidden, repeats, blocks,
                         n_fft // 2 + 1)

    def masks(self, mag: torch.Tensor) -> torch.Tensor:
        """``(batch, freq, frames) -> (batch, instruments, freq, frames)`` in [0, 1]."""
        y = self._features(mag)
        return torch.sigmoid(y.view(y.shape[0], len(self.instruments), self.n_bins, y.shape[-1]))

    def separate_magnitude(self, mag: torch.Tensor) -> torch.Tensor:
        """Ŝ_i = M_i ⊙ X: ``(batch, freq, frames) -> (batch, instruments, freq, frames)``."""
        return self.masks(mag) * mag.unsqueeze(1)

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, time) -> (batch, instruments, 1, time)``: masked magnitude, mixture phase, iSTFT."""
        X = self.spectrogram(mix)
        Y = self.masks(X.abs()) * X.unsqueeze(1)
        return istft(Y, self.n_fft, self.hop_length, "sqrt_hann", length=mix.shape[-1]).unsqueeze(2)


__all__ = ["TCN", "TCNTranscriptor", "TCNClassifier", "TCNSeparator", "N_NOTES", "LOWEST_MIDI"]
