"""Report figures with matplotlib (Agg backend): each function returns PNG bytes.

Every figure has labelled axes (and a legend or a colour bar where it carries
more than one quantity), so a reader can trust what is drawn:

* :func:`learning_curves` — training loss against optimiser step, one line per
  run, each smoothed by a moving average (the raw curve faint behind it);
* :func:`pr_curves` — precision and recall against the decision threshold;
* :func:`spectrogram` — a dB magnitude (or any ``(freq, frames)`` map, e.g. a
  harmonic mask) with time (s) and frequency (Hz) axes and a colour bar. The
  caller computes the STFT (:mod:`weakmir.audio.spectral`): this module is a
  leaf and draws what it is given;
* :func:`piano_roll` — note probabilities ``(instruments, 88, frames)``, time
  against MIDI pitch, one panel per instrument;
* :func:`bars` — grouped bars, one group per label and one colour per series (instrument-wise F1);
* :func:`attention_map` — weights ``(instances, classes)`` over time as one row per class, under the
  clip's log spectrogram when its audio is given (where each instrument plays).
"""

from __future__ import annotations

import io

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def smooth(y, width: int) -> np.ndarray:
    """Moving average over ``width`` points (shorter at the start), shape of ``y``."""
    y = np.asarray(y, dtype=float)
    if width <= 1 or len(y) == 0:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    i = np.arange(1, len(y) + 1)
    lo = np.maximum(i - width, 0)
    return (c[i] - c[lo]) / (i - lo)


def learning_curves(curves: dict, title: str, ylabel: str = "training loss", points: int = 20,
                    log_y: bool = False) -> bytes:
    """``{run: per-step losses}`` as one figure: step on x, loss on y, a legend of runs.

    Each curve is smoothed over 1/``points`` of the longest one (the raw values faint behind it).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    longest = max((len(v) for v in curves.values()), default=1)
    width = max(1, longest // points)
    for k, (name, v) in enumerate(curves.items()):
        v = np.asarray(v, dtype=float)
        if not len(v):
            continue
        x = np.arange(1, len(v) + 1)
        line, = ax.plot(x, smooth(v, width), label=name, color=f"C{k % 10}", lw=1.6)
        ax.plot(x, v, color=line.get_color(), alpha=0.15, lw=0.8)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(ylabel)
    ax.set_title(title + (f"\n(moving average over {width} steps; raw values faint)" if width > 1 else ""), fontsize=10)
    if log_y:
        ax.set_yscale("symlog")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8, loc="upper right")
    return _png(fig)


def pr_curves(curves: dict, title: str) -> bytes:
    """``{class: [{"threshold", "precision", "recall"}, ...]}``: one panel per class, precision and
    recall against the threshold, both axes 0-1."""
    plt = _plt()
    n = max(len(curves), 1)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n + 0.6, 2.8), sharey=True, squeeze=False)
    for ax, (name, pts) in zip(axes[0], curves.items()):
        th = [p["threshold"] for p in pts]
        ax.plot(th, [p["precision"] for p in pts], label="precision", color="C0")
        ax.plot(th, [p["recall"] for p in pts], label="recall", color="C3")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("threshold")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("precision / recall")
    axes[0][-1].legend(fontsize=8, loc="lower left")
    fig.suptitle(title, fontsize=11, y=1.03)
    return _png(fig)


def spectrogram(values: np.ndarray, sample_rate: int, hop_length: int, title: str, colorbar: str = "dB",
                vmin: float | None = None, vmax: float | None = None, fmax: float | None = None,
                cmap: str = "magma") -> bytes:
    """A ``(freq, frames)`` map (bins from 0 to Nyquist) with time (s) and frequency (Hz) axes and a
    colour bar labelled ``colorbar``; ``fmax`` crops the frequency axis."""
    plt = _plt()
    values = np.asarray(values, dtype=float)
    F, T = values.shape
    nyq = sample_rate / 2
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    im = ax.imshow(values, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest",
                   extent=(0, T * hop_length / sample_rate, 0, nyq))
    ax.set_ylim(0, min(fmax or nyq, nyq))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label=colorbar, pad=0.02)
    return _png(fig)


def piano_roll(probs: np.ndarray, frame_rate: float, names, title: str = "transcription") -> bytes:
    """Note probabilities ``(I, 88, frames)`` (piano keys A0..C8): one panel per instrument, time (s)
    against MIDI pitch, a colour bar of probability."""
    plt = _plt()
    probs = np.asarray(probs, dtype=float)
    I, _, N = probs.shape
    fig, axes = plt.subplots(I, 1, figsize=(7.0, 1.6 * I + 0.8), sharex=True, squeeze=False)
    for ax, p, name in zip(axes[:, 0], probs, names):
        im = ax.imshow(p, origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest",
                       extent=(0, N / frame_rate, 20.5, 108.5))
        ax.set_ylabel(f"{name}\nMIDI pitch", fontsize=8)
    axes[-1, 0].set_xlabel("time (s)")
    axes[0, 0].set_title(title, fontsize=10)
    fig.colorbar(im, ax=axes[:, 0].tolist(), label="note probability", pad=0.02)
    return _png(fig)


def bars(series: dict, labels, title: str, ylabel: str) -> bytes:
    """``{series: values (len(labels),)}`` as grouped bars with a legend; NaN bars are left out."""
    plt = _plt()
    labels = list(labels)
    n = max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(6.4, 0.45 * len(labels) * max(n / 3, 1)), 3.6))
    width = 0.8 / n
    x = np.arange(len(labels))
    for i, (name, vals) in enumerate(series.items()):
        ax.bar(x + (i - (n - 1) / 2) * width, np.nan_to_num(np.asarray(vals, float), nan=0.0), width, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=60 if len(labels) > 8 else 0, ha="right" if len(labels) > 8 else "center",
                       fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=min(n, 4))
    return _png(fig)


def attention_map(weights: np.ndarray, names, audio: np.ndarray | None, sample_rate: int, title: str,
                  instance_seconds: float = 0.96) -> bytes:
    """Attention weights ``(instances, classes)`` as one row per class over time (s), a colour bar of the
    weight; above them the log-magnitude spectrogram of ``audio`` ``(samples,)`` when given."""
    plt = _plt()
    w = np.asarray(weights, float)
    n, k = w.shape
    rows = 2 if audio is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(6.4, 1.8 + 0.35 * k + (1.8 if audio is not None else 0)),
                             squeeze=False, sharex=True, gridspec_kw={"height_ratios": [2, 1][:rows] if rows == 2 else [1]})
    if audio is not None:
        import scipy.signal

        f, t, z = scipy.signal.stft(np.asarray(audio, float), sample_rate, nperseg=512, noverlap=352)
        axes[0, 0].imshow(20 * np.log10(np.abs(z) + 1e-6), origin="lower", aspect="auto", cmap="magma",
                          extent=(0, t[-1] if len(t) else 0, 0, sample_rate / 2 / 1000), vmin=-80, vmax=0)
        axes[0, 0].set_ylabel("kHz")
        axes[0, 0].set_title(title, fontsize=10)
    ax = axes[-1, 0]
    im = ax.imshow(w.T, aspect="auto", cmap="viridis", vmin=0, interpolation="nearest",
                   extent=(0, n * instance_seconds, k - 0.5, -0.5))
    ax.set_yticks(range(k))
    ax.set_yticklabels(list(names), fontsize=8)
    ax.set_xlabel("time (s)")
    if audio is None:
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=axes[:, 0].tolist(), label="attention weight", pad=0.02)
    return _png(fig)


__all__ = ["smooth", "learning_curves", "pr_curves", "spectrogram", "piano_roll", "bars", "attention_map"]


def line_plot(x, series: dict, xlabel: str, ylabel: str, title: str) -> bytes:
    """``{name: y values (len(x),)}`` as lines with markers over ``x``; NaN points leave gaps."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    x = np.asarray(x, dtype=float)
    for k, (name, y) in enumerate(series.items()):
        y = np.asarray(y, dtype=float)
        ax.plot(x, y, label=name, color=f"C{k % 10}", lw=1.4, marker="o" if len(x) <= 20 else None, ms=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=7, ncol=2 if len(series) > 4 else 1)
    return _png(fig)


def pitch_over_spectrogram(mag: np.ndarray, f0: np.ndarray, sample_rate: int, hop_length: int, title: str,
                           fmax: float = 2000.0, n_fft: int | None = None, pooled: int = 1) -> bytes:
    """A magnitude spectrogram ``(freq, frames)`` in dB with an f0 track ``(frames,)`` Hz (0 = unvoiced,
    not drawn) over it, shown up to ``fmax``.

    ``mag`` holds the STFT's bins from 0 Hz: all ``n_fft // 2 + 1`` of them (``n_fft`` None), or the first
    ones of an ``n_fft``-point STFT; each column is ``pooled`` frames of the f0's hop (a long file's
    columns pooled, :func:`weakmir.infer.pitch.display_magnitude`). Rows above ``fmax`` are not drawn.
    """
    plt = _plt()
    mag = np.asarray(mag, dtype=np.float32)
    n_fft = 2 * (mag.shape[0] - 1) if n_fft is None else int(n_fft)
    bin_hz = sample_rate / n_fft
    mag = mag[: min(mag.shape[0], int(fmax / bin_hz) + 2)]  # one row past fmax, so the image reaches it
    F, T = mag.shape
    fig, ax = plt.subplots(figsize=(7.0, 3.0))
    db = 20 * np.log10(np.maximum(mag, 1e-6))
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 80, vmax=db.max(), interpolation="nearest",
              extent=(0, T * pooled * hop_length / sample_rate, -bin_hz / 2, (F - 0.5) * bin_hz))
    t = np.arange(len(f0)) * hop_length / sample_rate
    ax.plot(t, np.where(np.asarray(f0) > 0, f0, np.nan), color="cyan", lw=1.2, label="f0")
    ax.set_ylim(0, fmax)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    return _png(fig)
