"""Line plots as inline SVG, for report pages that open in any browser.

No plotting library: a report is a few curves (learning curves, precision /
recall over thresholds), and SVG keeps them vector and dependency-free.

    svg = line_plot({"clean": (steps, losses), "noisy": (steps, losses2)},
                    title="classifier loss", xlabel="step", ylabel="MAE")
"""

from __future__ import annotations

import html

import numpy as np

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    """Round tick values covering ``[lo, hi]``."""
    if hi <= lo:
        return np.array([lo])
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** np.floor(np.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    return np.arange(np.ceil(lo / step) * step, hi + step * 1e-9, step)


def smooth(y, width: int) -> np.ndarray:
    """Moving average over ``width`` points (shorter at the start), shape of ``y``."""
    y = np.asarray(y, dtype=float)
    if width <= 1 or len(y) == 0:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    i = np.arange(1, len(y) + 1)
    lo = np.maximum(i - width, 0)
    return (c[i] - c[lo]) / (i - lo)


def line_plot(series: dict, title: str = "", xlabel: str = "", ylabel: str = "", width: int = 420,
              height: int = 260, xlim=None, ylim=None) -> str:
    """An SVG ``<svg>`` element with one polyline per series.

    Args:
        series: ``{name: (x, y)}``, ``x`` and ``y`` 1-D of equal length;
            non-finite points are dropped.
        xlim, ylim: ``(lo, hi)``; default: the data's range.

    Returns:
        SVG text (embed it in HTML as is).
    """
    clean = {}
    for name, (x, y) in series.items():
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError(f"series {name!r}: x and y must be 1-D of equal length, got {x.shape} and {y.shape}")
        ok = np.isfinite(x) & np.isfinite(y)
        clean[name] = (x[ok], y[ok])
    xs = np.concatenate([x for x, _ in clean.values()] or [np.zeros(0)])
    ys = np.concatenate([y for _, y in clean.values()] or [np.zeros(0)])
    x0, x1 = xlim if xlim is not None else ((xs.min(), xs.max()) if xs.size else (0.0, 1.0))
    y0, y1 = ylim if ylim is not None else ((ys.min(), ys.max()) if ys.size else (0.0, 1.0))
    if x1 <= x0:
        x1 = x0 + 1.0
    if y1 <= y0:
        y1 = y0 + 1.0
    left, right, top, bottom = 52, 110, 24, 36
    pw, ph = width - left - right, height - top - bottom

    def px(x):
        return left + (np.asarray(x) - x0) / (x1 - x0) * pw

    def py(y):
        return top + ph - (np.asarray(y) - y0) / (y1 - y0) * ph

    e = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10">',
           f'<text x="{left + pw / 2:.1f}" y="14" text-anchor="middle" font-size="12">{e(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>']
    for t in _ticks(x0, x1):
        out.append(f'<line x1="{px(t):.1f}" y1="{top + ph}" x2="{px(t):.1f}" y2="{top + ph + 4}" stroke="#888"/>'
                   f'<text x="{px(t):.1f}" y="{top + ph + 14}" text-anchor="middle">{t:g}</text>')
    for t in _ticks(y0, y1):
        out.append(f'<line x1="{left - 4}" y1="{py(t):.1f}" x2="{left + pw}" y2="{py(t):.1f}" stroke="#eee"/>'
                   f'<text x="{left - 6}" y="{py(t) + 3:.1f}" text-anchor="end">{t:.3g}</text>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 4}" text-anchor="middle">{e(xlabel)}</text>')
    out.append(f'<text transform="translate(12 {top + ph / 2:.1f}) rotate(-90)" text-anchor="middle">{e(ylabel)}</text>')
    for k, (name, (x, y)) in enumerate(clean.items()):
        color = PALETTE[k % len(PALETTE)]
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px(x), py(y)))
        if pts:
            out.append(f'<polyline data-series="{e(name)}" fill="none" stroke="{color}" stroke-width="1.5" '
                       f'points="{pts}"/>')
        ly = top + 12 + 14 * k
        out.append(f'<line x1="{left + pw + 8}" y1="{ly - 3}" x2="{left + pw + 24}" y2="{ly - 3}" stroke="{color}" '
                   f'stroke-width="2"/><text x="{left + pw + 28}" y="{ly}">{e(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def curves_plot(curves: dict, title: str, ylabel: str = "loss", points: int = 20) -> str:
    """Training curves ``{name: per-step values}`` as one SVG line plot, each smoothed by a moving average
    of 1/``points`` of the longest curve."""
    width = max(1, max((len(v) for v in curves.values()), default=1) // points)
    return line_plot({k: (np.arange(1, len(v) + 1), smooth(v, width)) for k, v in curves.items()},
                     title=title, xlabel="step", ylabel=ylabel)


__all__ = ["line_plot", "smooth", "curves_plot", "PALETTE"]


def markdown_page(markdown: str, title: str, figures: list | None = None) -> str:
    """A standalone HTML page from the plain Markdown weakmir writes (``#`` headings,
    ``|`` tables, paragraphs), with ``figures`` (SVG or HTML snippets) appended.
    """
    e = html.escape
    body, table = [], []

    def flush():
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= set("-: ")]
            cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{e(c)}</th>" for c in cells[0])
            rest = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in cells[1:])
            body.append(f"<table><tr>{head}</tr>{rest}</table>")
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            body.append(f"<h{level}>{e(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            body.append(f"<p>{e(line.strip())}</p>")
    flush()
    figs = "".join(f"<figure>{f}</figure>" for f in figures or [])
    return ("<!doctype html><meta charset=utf-8>"
            f"<title>{e(title)}</title><style>body{{font-family:sans-serif;max-width:1100px}}"
            "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}table{border-collapse:collapse}"
            "figure{display:inline-block;margin:6px}</style>" + "".join(body) + figs + "\n")


__all__ += ["markdown_page"]
