"""Report pages: one Markdown-table helper, a jinja2 HTML page with every figure embedded and written beside it,
and matplotlib figures that carry their axes (read back from the PNG's size and from the figure objects)."""

import numpy as np
import pytest

from weakmir.report import figures as F
from weakmir.report.page import Page, cell, markdown_table


def test_markdown_table_formats_cells_and_nan():
    md = markdown_table(["a", "b"], [["x", 1.23456], ["y", float("nan")], ["z", np.float32(2.5)]], digits=3)
    assert md.splitlines() == ["| a | b |", "|---|---|", "| x | 1.235 |", "| y | nan |", "| z | 2.500 |"]
    assert cell(None) == "" and cell(True) == "True" and cell(3) == "3"


def test_page_writes_markdown_html_and_png_files_atomically(tmp_path):
    page = Page("A <report>", "intro & more")
    s = page.section("Table 1", "text")
    s.table(["run", "dB"], [["clean", 1.0], ["noisy <b>", -2.5]])
    png = F.learning_curves({"clean": np.linspace(3, 1, 50), "noisy": np.linspace(3, 2, 40)}, "curves")
    s.figure(png, "learning curves", "curves").figure(png, "again", "curves")  # same name: made unique
    out = page.write(tmp_path)
    assert sorted(p.name for p in (tmp_path / "report_files").iterdir()) == ["curves-2.png", "curves.png"]
    html = out["html"].read_text()
    assert html.startswith("<!doctype html>") and "A &lt;report&gt;" in html and "noisy &lt;b&gt;" in html
    assert html.count('<img src="data:image/png;base64,') == 2 and 'href="report_files/curves-2.png"' in html
    md = out["markdown"].read_text()
    assert "| noisy <b> | -2.50 |" in md and "![again](report_files/curves-2.png)" in md
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary files left


def _axes_of(monkeypatch, fn, *args, **kw):
    """Run a figure function and return the axes matplotlib drew (captured before the figure closes)."""
    import matplotlib.pyplot as plt

    seen = []
    real = plt.close
    monkeypatch.setattr(plt, "close", lambda fig: (seen.append(fig), real(fig)))
    png = fn(*args, **kw)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return seen[-1].axes


def test_learning_curves_have_labelled_axes_and_a_legend(monkeypatch):
    axes = _axes_of(monkeypatch, F.learning_curves, {"a": np.arange(100.0), "b": np.arange(60.0)}, "t", "loss")
    ax = axes[0]
    assert ax.get_xlabel() == "optimiser step" and ax.get_ylabel().startswith("loss")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


def test_spectrogram_has_time_frequency_axes_and_a_colour_bar(monkeypatch):
    axes = _axes_of(monkeypatch, F.spectrogram, np.zeros((513, 40)), 16000, 500, "mix", "magnitude (dB)")
    main, bar = axes
    assert main.get_xlabel() == "time (s)" and main.get_ylabel() == "frequency (Hz)"
    assert bar.get_ylabel() == "magnitude (dB)"
    assert main.get_xlim() == pytest.approx((0, 40 * 500 / 16000)) and main.get_ylim() == pytest.approx((0, 8000))


def test_pr_curves_and_piano_roll_axes(monkeypatch):
    pts = [{"threshold": t, "precision": t, "recall": 1 - t} for t in np.linspace(0.05, 0.95, 5)]
    axes = _axes_of(monkeypatch, F.pr_curves, {"bass": pts, "drums": pts}, "Ψ")
    assert [a.get_title() for a in axes] == ["bass", "drums"] and axes[0].get_ylabel() == "precision / recall"
    axes = _axes_of(monkeypatch, F.piano_roll, np.zeros((2, 88, 30)), 32.0, ["piano", "bass"])
    assert axes[-2].get_xlabel() == "time (s)" and "MIDI pitch" in axes[0].get_ylabel()
    assert axes[-1].get_ylabel() == "note probability"


def test_smooth_is_a_moving_average():
    assert F.smooth([1, 2, 3, 4], 2).tolist() == [1.0, 1.5, 2.5, 3.5]
    assert F.smooth([1, 2], 1).tolist() == [1, 2]
