import xml.etree.ElementTree as ET

import numpy as np
import pytest

from weakmir.report.plots import curves_plot, line_plot, smooth

NS = "{http://www.w3.org/2000/svg}"


def _points(svg, name):
    root = ET.fromstring(svg)
    (line,) = [p for p in root.iter(NS + "polyline") if p.get("data-series") == name]
    return np.array([[float(v) for v in pt.split(",")] for pt in line.get("points").split()])


def test_points_map_monotonically_into_the_plot_box():
    x = np.arange(10.0)
    svg = line_plot({"up": (x, x ** 2), "down <&>": (x, -x)}, title="t", xlabel="step", ylabel="loss")
    up, down = _points(svg, "up"), _points(svg, "down <&>")  # names are escaped, and parse back
    root = ET.fromstring(svg)
    w, h = float(root.get("width")), float(root.get("height"))
    for pts in (up, down):
        assert len(pts) == 10
        assert np.all((pts[:, 0] >= 0) & (pts[:, 0] <= w) & (pts[:, 1] >= 0) & (pts[:, 1] <= h))
        assert np.all(np.diff(pts[:, 0]) > 0)
    assert np.all(np.diff(up[:, 1]) < 0)  # larger y is higher on the page
    assert np.all(np.diff(down[:, 1]) > 0)
    # the data range fills the plot box: the largest y on its top edge, the smallest on its bottom edge
    box = root.find(NS + "rect")
    top, bottom = float(box.get("y")), float(box.get("y")) + float(box.get("height"))
    assert up[-1, 1] == pytest.approx(top) and down[-1, 1] == pytest.approx(bottom)


def test_non_finite_points_are_dropped_and_shapes_checked():
    svg = line_plot({"a": ([0, 1, 2], [1.0, np.nan, 3.0])})
    assert len(_points(svg, "a")) == 2
    with pytest.raises(ValueError, match="equal length"):
        line_plot({"a": ([0, 1], [1.0])})


def test_curves_plot_smooths_each_curve_by_a_twentieth_of_the_longest():
    long, short = list(np.arange(40.0) % 2), [5.0, 7.0, 9.0]
    svg = curves_plot({"long": long, "short": short}, "t")
    expect = line_plot({"long": (np.arange(1, 41), smooth(long, 2)), "short": (np.arange(1, 4), smooth(short, 2))},
                       title="t", xlabel="step", ylabel="loss")
    assert svg == expect
    assert len(_points(svg, "long")) == 40


def test_smooth_is_a_trailing_moving_average():
    np.testing.assert_allclose(smooth([2, 4, 6, 8], 2), [2, 3, 5, 7])
    np.testing.assert_allclose(smooth([1, 2, 3], 1), [1, 2, 3])


def test_markdown_page_turns_tables_and_headings_into_html():
    from weakmir.report.plots import markdown_page

    md = "# Title <x>\n\nSome text.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\n## Next\n"
    page = markdown_page(md, "t", figures=["<svg></svg>"])
    assert "<h1>Title &lt;x&gt;</h1>" in page and "<h2>Next</h2>" in page and "<p>Some text.</p>" in page
    assert "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr><tr><td>3</td><td>4</td></tr></table>" in page
    assert page.count("<figure><svg></svg></figure>") == 1
