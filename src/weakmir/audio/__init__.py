"""Audio layer: file IO, resampling, STFT, silence removal, loudness, effects.

Conventions: audio arrays are ``(channels, time)`` float32 in [-1, 1];
``sample_rate`` in Hz; times in seconds.
"""

from .io import info, load, read_segment, resample, save, to_channels  # noqa: F401
