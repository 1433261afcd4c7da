"""``<results>/index.html``: one self-contained page to browse the results (``epinet-bench report --html``).

The page holds the tables the report built (the same ``Table`` objects as the Markdown, LaTeX and
CSV files, rendered as sortable HTML tables), the published-vs-reproduced tables of nested results
directories (results/der2020), the figures, and, for every group of runs those tables show (main,
ablation variants, memory budgets, tuning, reproduction; ``run_groups``), the mean accuracy matrix
as a heatmap and each seed's run with its config and code version.

Self-contained: the figures are embedded as base64 PNG data URIs and the sorting is a few lines of
inline JavaScript, so the page opens from disk with no network and links to no other file. Like
every report it is built from the run JSONs alone (and the figures the report drew from them).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup, escape

from benchmarks.aggregate import mean_std
from benchmarks.report.builders import nested_tuning_tables
from benchmarks.report.pages import FIGURES
from benchmarks.report.reproduction import nested_reproduction_tables
from benchmarks.report.run_groups import heat_css, run_blocks
from benchmarks.report.stats import Stat
from benchmarks.report.tables import NOTE_MARKUP, Table
from benchmarks.units import Bytes

PAGE = "index.html"
TEMPLATE = "index.html.j2"  # next to this module


def note_html(md: str) -> Markup:
    """A table note written in Markdown (the subset ``tables.NOTE_MARKUP`` knows), as HTML."""
    out, pos = [], 0
    for m in NOTE_MARKUP.finditer(md):
        out.append(escape(md[pos : m.start()]))
        if m["bold"] is not None:
            out.append(Markup("<strong>{}</strong>").format(m["bold"]))
        elif m["stars"]:
            out.append("*" * m["stars"].count("*"))
        elif m["code"] is not None:
            out.append(Markup("<code>{}</code>").format(m["code"]))
        else:
            out.append(Markup("{}<sup>{}</sup>").format(m["base"], m["power"]))
        pos = m.end()
    out.append(escape(md[pos:]))
    return Markup("").join(out)


def html_cell(value) -> dict:
    """A table cell as shown (``html``) and its sort key (``sort``: the plain number where there is one)."""
    if isinstance(value, Stat):
        if not math.isfinite(value.mean):
            return {"html": "—", "sort": "", "numeric": True}
        text = mean_std(value.mean, value.std if value.n >= 2 else None, signed=value.signed, digits=value.digits)
        shown = Markup("<strong>{}</strong>").format(text) if value.bold else escape(text)
        return {"html": shown + escape(value.mark), "sort": repr(value.mean), "numeric": True}
    if isinstance(value, Bytes):  # shown in kB / MB / GB, sorted by the count itself
        return {
            "html": escape(str(value)),
            "sort": repr(float(value.n)) if math.isfinite(value.n) else "",
            "numeric": True,
        }
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return {"html": "—", "sort": "", "numeric": False}
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    text = str(value)
    if text.startswith("**") and text.endswith("**"):  # a Markdown-bold word ("**no**" of the reproduction table)
        return {"html": Markup("<strong>{}</strong>").format(text[2:-2]), "sort": text[2:-2], "numeric": False}
    return {"html": escape(text), "sort": repr(value) if numeric else text, "numeric": numeric}


def table_view(table: Table, csv: str) -> dict:
    return {
        "id": "table-" + csv.removesuffix(".csv").replace("tables/", "").replace("/", "-"),
        "title": table.title,
        "csv": csv,
        "headers": [c.md for c in table.columns],
        "rows": [[html_cell(v) for v in row] for row in table.rows],
        "notes": [note_html(n) for n in table.notes],
    }


def figure_views(figures_dir: Path) -> list[dict]:
    """Every PNG the report drew, embedded, captioned (a) to (e) like the results page."""
    pngs = sorted(figures_dir.glob("*.png")) if figures_dir.is_dir() else []
    views = []
    for png in pngs:
        caption = next((text for prefix, text in FIGURES.items() if png.stem.startswith(prefix)), png.stem)
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        views.append({"name": png.name, "caption": caption, "src": f"data:image/png;base64,{data}"})
    return sorted(views, key=lambda v: (v["caption"], v["name"]))


def write_html(root: Path, frame: pd.DataFrame, main: pd.DataFrame, tables: list[Table], log: Callable) -> Path:
    """Write ``root/index.html`` from the tables the report built, its figures and the runs."""

    def views(prefix: str) -> list[dict]:
        return [table_view(t, f"tables/{t.name}.csv") for t in tables if t.name.startswith(prefix)]

    tuning = views("tuning") + [
        table_view(t, f"{sub.name}/tables/{t.name}.csv") for sub, t in nested_tuning_tables(root, log)
    ]
    reproduction = views("reproduction") + [
        table_view(t, f"{sub.name}/tables/{t.name}.csv") for sub, t in nested_reproduction_tables(root, log)
    ]

    def tables_section(key: str, heading: str, shown: list[dict], missing: str) -> dict:
        return {"id": key, "heading": heading, "kind": "tables", "tables": shown, "missing": missing}

    sections = [
        tables_section("main", "Main comparison", views("main"), "No main-role runs."),
        tables_section("ablation", "Ablations", views("ablation"), "No ablation runs (role: ablation)."),
        tables_section("memory", "Memory budget", views("memory"), "No memory runs (role: memory)."),
        tables_section(
            "tuning", "Hyperparameter selection", tuning, "No tuning runs (role: tuning) here or in a folder below."
        ),
        tables_section(
            "reproduction",
            "Published vs reproduced",
            reproduction,
            "No reproduction runs (role: reproduction) here or in a folder below.",
        ),
        {"id": "figures", "heading": "Figures", "kind": "figures", "figures": figure_views(root / "figures")},
        {
            "id": "runs",
            "heading": "Runs",
            "kind": "runs",
            "blocks": run_blocks(root, frame, main, lambda m: log(f"{PAGE}: {m}")),
        },
    ]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True, keep_trailing_newline=True
    )
    roles = sorted(frame["role"].value_counts().items())
    page = env.get_template(TEMPLATE).render(
        n_runs=len(frame), roles=roles, sections=sections, heat_css=Markup(heat_css())
    )
    path = root / PAGE
    path.write_text(page)
    return path
