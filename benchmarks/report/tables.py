"""A table as data (columns, cells, notes, plain numbers) and its renderers: Markdown, LaTeX
(booktabs) and CSV. Notes are written once, in Markdown, and translated to LaTeX here."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmarks.aggregate import mean_std
from benchmarks.report.stats import Stat

DASH = {"md": "—", "tex": "--"}
TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\^{}",
    "—": "--",
    "±": r"$\pm$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "Δ": r"$\Delta$",
    "†": r"$^\dagger$",
}
# The Markdown a note may use: **bold**, escaped significance stars (\*, \*\*), `code`, 10^6.
NOTE_MARKUP = re.compile(r"\*\*(?P<bold>.+?)\*\*|(?P<stars>(?:\\\*)+)|`(?P<code>[^`]*)`|(?P<base>\d+)\^(?P<power>\d+)")


def tex_escape(text: str) -> str:
    return "".join(TEX.get(c, c) for c in text)


def tex_note(md: str) -> str:
    """A note written in Markdown, as LaTeX."""
    out, pos = [], 0
    for m in NOTE_MARKUP.finditer(md):
        out.append(tex_escape(md[pos : m.start()]))
        if m["bold"] is not None:
            out.append(rf"\textbf{{{tex_escape(m['bold'])}}}")
        elif m["stars"]:
            out.append(f"$^{{{'*' * m['stars'].count('*')}}}$")
        elif m["code"] is not None:
            out.append(rf"\texttt{{{tex_escape(m['code'])}}}")
        else:
            out.append(f"${m['base']}^{{{m['power']}}}$")
        pos = m.end()
    return "".join(out) + tex_escape(md[pos:])


def cell(value, fmt: str) -> str:
    """Render a cell as Markdown (``md``) or LaTeX (``tex``)."""
    if isinstance(value, Stat):
        if not math.isfinite(value.mean):
            return DASH[fmt]
        text = mean_std(
            value.mean,
            value.std if value.n >= 2 else None,
            pm=" $\\pm$ " if fmt == "tex" else " ± ",
            signed=value.signed,
            digits=value.digits,
        )
        if fmt == "tex" and value.signed:
            text = f"${text}$"
        if value.bold:
            text = f"\\textbf{{{text}}}" if fmt == "tex" else f"**{text}**"
        if value.mark:
            tex_mark = value.mark.replace("†", r"\dagger ")
            text += f"$^{{{tex_mark}}}$" if fmt == "tex" else value.mark.replace("*", "\\*")
        return text
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH[fmt]
    text = str(value)
    return tex_escape(text) if fmt == "tex" else text.replace("|", "\\|")


@dataclass
class Column:
    md: str  # Markdown header (unique)
    tex: str = ""  # LaTeX header under its group
    group: str = ""  # LaTeX spanning header (a benchmark, a strategy); "" for none


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[list]
    notes: list[str]  # Markdown paragraphs under the table (tex_note translates them)
    numbers: pd.DataFrame  # the CSV: one row per cell group, plain numbers
    formats: tuple[str, ...] = ("md", "tex", "csv")
    # numeric columns right-aligned by tabulate (the tuning table's look) instead of all left
    numparse: bool = False

    def markdown(self) -> str:
        shown = pd.DataFrame([[cell(v, "md") for v in row] for row in self.rows], columns=[c.md for c in self.columns])
        if self.numparse:
            text = shown.to_markdown(index=False)
        else:
            text = shown.to_markdown(index=False, colalign=["left"] * len(self.columns), disable_numparse=True)
        return "\n\n".join([text, *self.notes])

    def latex(self) -> str:
        groups = [c.group for c in self.columns]
        if any(groups):
            columns = pd.MultiIndex.from_tuples([(tex_escape(c.group), c.tex) for c in self.columns])
        else:
            columns = pd.Index([c.tex for c in self.columns])
        shown = pd.DataFrame([[cell(v, "tex") for v in row] for row in self.rows], columns=columns)
        text = shown.style.hide(axis="index").to_latex(
            hrules=True,
            multicol_align="c",
            column_format="l" + "c" * (len(self.columns) - 1),
            caption=tex_escape(self.title),
            label=f"tab:{self.name}",
            position="t",
            position_float="centering",
        )
        lines = text.splitlines()
        if any(groups):
            rules, start = [], 0
            while start < len(groups):
                stop = start
                while stop + 1 < len(groups) and groups[stop + 1] == groups[start]:
                    stop += 1
                if groups[start]:
                    rules.append(f"\\cmidrule(lr){{{start + 1}-{stop + 1}}}")
                start = stop + 1
            first_header = lines.index("\\toprule") + 1
            lines.insert(first_header + 1, " ".join(rules))
        end = lines.index("\\end{table}")
        lines[end:end] = [f"\\par\\smallskip{{\\footnotesize {tex_note(note)}}}" for note in self.notes]
        header = f"% epinet-bench report: {self.title}. Needs \\usepackage{{booktabs}}."
        return "\n".join([header, *lines]) + "\n"

    def write(self, tables_dir: Path) -> list[Path]:
        tables_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for ext in self.formats:
            path = tables_dir / f"{self.name}.{ext}"
            if ext == "csv":
                self.numbers.to_csv(path, index=False)
            else:
                path.write_text(self.markdown() + "\n" if ext == "md" else self.latex())
            paths.append(path)
        return paths
