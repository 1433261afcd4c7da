"""``epinet-bench report``: every artifact the runs allow, each built on its own.

``report(results_dir)`` reads every run JSON under ``results_dir/runs`` and writes

* ``tables/main.{md,tex,csv}``      every strategy on every benchmark of the main-role runs
* ``tables/ablation.{md,tex,csv}``  the ablated strategy's main runs (full) against each variant
* ``tables/memory.{md,tex,csv}``    final accuracy per memory budget
* ``tables/tuning.{md,csv}``        the hyperparameter selection from tuning-role runs
* ``tables/reproduction-<experiment>.{md,tex,csv}``  published vs reproduced (reproduction-role runs)
* ``figures/*.{png,pdf}``           see ``benchmarks.report.figures``
* ``README.md``                     the results page (``benchmarks.report.pages``)
* ``index.html``                    with ``html=True``: the self-contained browsable page (``benchmarks.report.html``)

A problem (an unreadable or old-schema run file, a table without data) is printed as one line
and the rest is still rendered; nothing raises out of ``report``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.report.builders import ablation_tables, main_table, memory_tables, tuning_table
from benchmarks.report.equal_bytes import equal_bytes_table
from benchmarks.report.pages import update_readme, write_results_page
from benchmarks.report.reproduction import reproduction_tables
from benchmarks.report.selection import (
    NoData,
    ablations,
    load_runs,
    main_runs,
    memory_series,
    pooling_notes,
    reference_of,
)


def report(
    results_dir: str | Path = "results",
    update_readme_path: str | Path | None = None,
    figures: bool = True,
    html: bool = False,
    out: Callable = print,
    log: Callable | None = None,
) -> int:
    """Write every table (and figure) the runs allow, and the results page; 0 if a table or
    figure was rendered, 2 otherwise. Problems go to ``log`` (stderr), one line each; written
    files and the main table to ``out``."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    root = Path(results_dir)
    runs = load_runs(root)
    for problem in runs.problems:
        log(problem)
    frame = runs.frame
    if frame.empty:
        log(
            f"epinet-bench report: nothing to report: no readable runs under {root}"
            f" (run `epinet-bench sweep CONFIG --results {root}` first)"
        )
        return 2
    out(
        f"read {len(frame)} runs from {root}: "
        + ", ".join(f"{n} {role}" for role, n in frame["role"].value_counts().items())
    )
    main, adhoc_note = main_runs(frame)
    for note in (
        ([adhoc_note] if adhoc_note else [])
        + reference_of(main)[1]
        + pooling_notes(main, ["strategy", "benchmark"], "main")
    ):
        log(note)

    def attempt(what: str, build: Callable):
        """``build()``, or None with one line saying why not: one broken artifact must not stop the others."""
        try:
            return build()
        except NoData as err:
            log(f"skipped {what}: {err}")
        except Exception as err:
            log(f"could not render {what}: {type(err).__name__}: {err}")
        return None

    tables_dir, figures_dir = root / "tables", root / "figures"
    table_steps = [
        ("tables/main", lambda: ([main_table(main)], [])),
        ("tables/ablation", lambda: ablation_tables(frame)),
        ("tables/memory", lambda: (memory_tables(frame), [])),
        ("tables/equal-bytes", lambda: ([equal_bytes_table(frame)], [])),
        ("tables/tuning", lambda: ([tuning_table(frame)], [])),
        ("tables/reproduction", lambda: (reproduction_tables(frame), [])),
    ]
    tables, rendered = [], []
    for what, build in table_steps:
        made = attempt(what, build)
        for note in made[1] if made else []:
            log(note)
        for table in made[0] if made else []:
            written = attempt(f"tables/{table.name}", lambda table=table: table.write(tables_dir))
            if written:
                tables.append(table)
                rendered += written
                out(f"wrote {tables_dir / table.name}.{{{','.join(table.formats)}}}")
                if table.name == "tuning" or table.name.startswith("reproduction"):
                    out(table.markdown())
    if figures:
        rendered += draw_figures(main, frame, figures_dir, attempt, out, log)
    attempt("README.md (results page)", lambda: write_results_page(root, frame, tables, log))
    if html:
        from benchmarks.report.html import write_html

        page = attempt("index.html", lambda: write_html(root, frame, main, tables, log))
        if page:
            rendered.append(page)
            out(f"wrote {page}")

    status = 0 if rendered else 2
    if update_readme_path is not None:
        try:
            changed = update_readme(update_readme_path, root)
            for block, was_changed in changed.items():
                out(f"{'updated' if was_changed else 'unchanged'}: {block} block in {update_readme_path}")
        except (ValueError, OSError) as err:
            log(f"epinet-bench report: README not updated: {err}")
            status = 2
    shown = next((t for t in tables if t.name == "main"), None)
    if shown is not None:
        out("")
        out(f"{shown.title} ({len(main)} runs, {root}):")
        out(shown.markdown())
    if not rendered:
        log(
            f"epinet-bench report: nothing rendered from {root}:"
            f" its runs have role(s) {', '.join(map(repr, sorted(set(frame['role']))))}"
        )
    return status


def draw_figures(main, frame, figures_dir: Path, attempt: Callable, out: Callable, log: Callable) -> list[Path]:
    """Every figure the runs allow; none, with a message, where matplotlib or seaborn is missing."""
    try:
        import benchmarks.report.figures as fig  # selects matplotlib's Agg backend
    except Exception as err:
        log(f"skipped figures: cannot load matplotlib/seaborn: {type(err).__name__}: {err}")
        return []

    def several(items: Callable, draw: Callable, base: str, suffix: Callable) -> Callable:
        # ablation studies and memory series: one figure each, suffixed where there are several
        def build():
            found = items()
            return [
                p
                for item in found
                for p in draw(item, figures_dir, f"{base}-{suffix(item)}" if len(found) > 1 else base)
            ]

        return build

    steps = [
        ("figures/seen_accuracy", lambda: fig.seen_accuracy(main, figures_dir)),
        ("figures/accuracy_matrix", lambda: fig.accuracy_matrices(main, figures_dir, log=log)),
        ("figures/forgetting", lambda: fig.forgetting(main, figures_dir)),
        (
            "figures/ablation",
            several(lambda: ablations(frame), fig.ablation, "ablation", lambda s: f"{s.strategy}-{s.benchmark}"),
        ),
        ("figures/memory", several(lambda: memory_series(frame), fig.memory, "memory", lambda s: s.benchmark)),
    ]
    rendered = []
    for what, build in steps:
        paths = attempt(what, build)
        if paths:
            rendered += paths
            out("wrote " + ", ".join(f"{s}.{{png,pdf}}" for s in sorted({p.with_suffix("") for p in paths})))
    return rendered
