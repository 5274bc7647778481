"""A report page: sections of text, tables and figures, written as Markdown and as HTML.

    page = Page("Score-supervised experiment", intro="...")
    sec = page.section("Table 1: separation", "SI-SDR (dB) on the test tracks")
    sec.table(["training", "piano", "avg"], [["supervised", 3.1, 5.7]])
    sec.figure(learning_curves(...), "learning curves", "curves")
    page.write(out_dir)   # report.md, report.html, report_files/*.png (atomically)

Markdown tables come from one helper (:func:`markdown_table`, also used by
``weakmir evaluate``); the HTML page is a jinja2 template
(``templates/page.html.j2``) with every figure embedded (a data URI, so the
page opens anywhere) and linked to its PNG file beside the page.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass, field
from pathlib import Path


def cell(v, digits: int = 2) -> str:
    """One table cell: numbers to ``digits`` decimals (NaN as "nan"), everything else as text."""
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if hasattr(v, "dtype") and getattr(v, "ndim", 1) == 0:  # numpy scalars
        v = v.item()
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def markdown_table(header, rows, digits: int = 2) -> str:
    """A Markdown table: ``header`` a list of column names, ``rows`` lists of cells (:func:`cell`)."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v, digits) for v in r) + " |" for r in rows]
    return "\n".join(lines)


@dataclass
class Table:
    header: list
    rows: list
    digits: int = 2


@dataclass
class Figure:
    png: bytes
    caption: str
    name: str  # file stem under report_files/

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class Section:
    title: str
    text: str = ""
    tables: list = field(default_factory=list)
    figures: list = field(default_factory=list)

    def table(self, header, rows, digits: int = 2) -> "Section":
        self.tables.append(Table(list(header), [list(r) for r in rows], digits))
        return self

    def figure(self, png: bytes, caption: str, name: str | None = None) -> "Section":
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name or caption).strip("-")[:60] or "figure"
        self.figures.append(Figure(png, caption, stem))
        return self


@dataclass
class Page:
    title: str
    intro: str = ""
    sections: list = field(default_factory=list)

    def section(self, title: str, text: str = "") -> Section:
        s = Section(title, text)
        self.sections.append(s)
        return s

    def _files(self, stem: str) -> list:
        """``[(figure, relative path)]`` with unique file names."""
        out, seen = [], set()
        for s in self.sections:
            for f in s.figures:
                name, k = f.name, 2
                while name in seen:
                    name, k = f"{f.name}-{k}", k + 1
                seen.add(name)
                out.append((f, f"{stem}_files/{name}.png"))
        return out

    def markdown(self, stem: str = "report") -> str:
        paths = {id(f): p for f, p in self._files(stem)}
        lines = [f"# {self.title}\n"]
        if self.intro:
            lines.append(self.intro + "\n")
        for s in self.sections:
            lines.append(f"## {s.title}\n")
            if s.text:
                lines.append(s.text + "\n")
            for t in s.tables:
                lines.append(markdown_table(t.header, t.rows, t.digits) + "\n")
            for f in s.figures:
                lines.append(f"![{f.caption}]({paths[id(f)]})\n")
        return "\n".join(lines)

    def html(self, stem: str = "report") -> str:
        import jinja2

        env = jinja2.Environment(loader=jinja2.PackageLoader("weakmir.report", "templates"),
                                 autoescape=jinja2.select_autoescape(["html", "j2"]))
        paths = {id(f): p for f, p in self._files(stem)}
        sections = [(s, [(f, paths[id(f)]) for f in s.figures]) for s in self.sections]
        return env.get_template("page.html.j2").render(page=self, sections=sections, cell=cell)

    def write(self, out, stem: str = "report") -> dict:
        """``out/<stem>.md``, ``out/<stem>.html`` and the figures as ``out/<stem>_files/*.png``, each written
        atomically. Returns ``{"markdown", "html", "figures": [paths]}``."""
        from ..files import atomic_write_bytes, atomic_write_text

        out = Path(out)
        figs = []
        for f, rel in self._files(stem):
            figs.append(atomic_write_bytes(out / rel, f.png))
        md = atomic_write_text(out / f"{stem}.md", self.markdown(stem))
        page = atomic_write_text(out / f"{stem}.html", self.html(stem))
        return {"markdown": md, "html": page, "figures": figs}


__all__ = ["cell", "markdown_table", "Table", "Figure", "Section", "Page"]
