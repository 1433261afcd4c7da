"""Result tables, the README's main-table block and the ``epinet-bench report`` command.

``report(results_dir)`` reads every run JSON under ``results_dir/runs`` (through
``benchmarks.aggregate.runs_frame``, the one place records are flattened) and writes

* ``tables/main.{md,tex,csv}``      every strategy on every benchmark of the ``main`` experiment
* ``tables/ablation.{md,tex,csv}``  EpiNet full (main experiment, split-mnist) against each ablation variant
* ``tables/memory.{md,tex,csv}``    replay and EpiNet on split-mnist per memory budget
* ``figures/*.{png,pdf}``           see ``benchmarks.plots``

Statistics: a cell is the mean ± the sample standard deviation (pandas ``std``, ddof=1) over
the seeds of that cell; the ± part is left out when there is a single seed. Significance is
Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``, two-sided) on final accuracy over
seeds against reservoir replay, per benchmark.

A problem (an unreadable or old-schema run file, a table without data) is printed as one line
and the rest is still rendered; nothing raises out of ``report``.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import tuning
from benchmarks.aggregate import runs_frame, summary
from benchmarks.store import CorruptResult, iter_results

STRATEGY_ORDER = ("naive", "ewc", "replay", "epinet", "joint")
BENCHMARK_ORDER = ("split-mnist", "split-mnist-task", "permuted-mnist")
ABLATION_ORDER = ("no-recall", "no-decay", "random-salience", "one-expert", "no-reencode", "no-class-balance", "class-balanced")
REFERENCE = "replay"  # reservoir replay: the significance tests compare every strategy with it
ABLATION_BENCHMARK = "split-mnist"
MEMORY_BENCHMARK = "split-mnist"
FULL_LABEL = "full (main)"
README_START = "<!-- main-table:start -->"
README_END = "<!-- main-table:end -->"
DASH = {"md": "—", "tex": "--"}


class NoData(Exception):
    """A table or figure has nothing to show; the message says what is missing."""


# ----------------------------------------------------------------------------- loading


@dataclass
class Runs:
    frame: pd.DataFrame  # benchmarks.aggregate.runs_frame, experiment/variant filled in
    problems: list[str] = field(default_factory=list)
    files: int = 0


def load_runs(results_dir: str | Path) -> Runs:
    """Every trustworthy run under ``results_dir``; each file that is not is named in ``problems``."""
    root = Path(results_dir)
    if not root.exists():
        return Runs(runs_frame([]), [f"results directory {root} does not exist"])
    if not root.is_dir():
        return Runs(runs_frame([]), [f"{root} is not a directory"])
    records, problems, files = [], [], 0
    try:
        for path, result in iter_results(root):
            files += 1
            if isinstance(result, CorruptResult):
                problems.append(f"skipped {result}")
                continue
            record = result.model_dump()
            config, matrix = record["config"], record["accuracy_matrix"]
            missing = [key for key in ("benchmark", "strategy") if not isinstance(config.get(key), str)]
            if missing:
                problems.append(f"skipped {path}: its config names no {' or '.join(missing)}")
            elif len(matrix) > len(matrix[0]):
                problems.append(f"skipped {path}: accuracy matrix has {len(matrix)} rows for {len(matrix[0])} experiences")
            else:
                records.append(record)
    except OSError as err:
        problems.append(f"could not read all of {root}: {err}")
    if files == 0:
        problems.append(f"no run files (runs/<benchmark>/<strategy>/<hash>/seed<N>.json) under {root}")
    frame = runs_frame(records)
    frame["experiment"] = frame["experiment"].fillna("adhoc")
    frame["variant"] = frame["variant"].fillna("default")
    return Runs(frame, problems, files)


def ordered(values, preferred=()) -> list:
    """Distinct ``values``: those in ``preferred`` in that order, then the rest sorted."""
    present = set(pd.Series(values).dropna())
    return [v for v in preferred if v in present] + sorted(present - set(preferred), key=str)


def strategy_order(values) -> list[str]:
    return ordered(values, STRATEGY_ORDER)


def benchmark_order(values) -> list[str]:
    return ordered(values, BENCHMARK_ORDER)


def upper_bounds(runs: pd.DataFrame) -> set[str]:
    """Strategies that train once on everything (joint): one row in every accuracy matrix."""
    found = {"joint"} & set(runs["strategy"])
    for strategy, group in runs.groupby("strategy"):
        if len(group) and all(len(m) == 1 for m in group["accuracy_matrix"]):
            found.add(strategy)
    return found


def main_runs(frame: pd.DataFrame, allow_adhoc: bool = True) -> tuple[pd.DataFrame, str | None]:
    """The main experiment's runs; without any, ad-hoc ``epinet-bench run`` runs (with a note saying so)."""
    main = frame[frame["experiment"] == "main"]
    if not main.empty or not allow_adhoc:
        return main, None
    adhoc = frame[frame["experiment"] == "adhoc"]
    if adhoc.empty:
        return adhoc, None
    return adhoc, f"no main-experiment runs: the main table and figures show the {len(adhoc)} ad-hoc runs (epinet-bench run)"


def ablation_runs(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(EpiNet full: main experiment on split-mnist, ablation variants on split-mnist, notes)."""
    abl = frame[frame["experiment"] == "ablation"]
    if abl.empty:
        raise NoData("no ablation-experiment runs (experiment: ablation)")
    notes = []
    keep = (abl["strategy"] == "epinet") & (abl["benchmark"] == ABLATION_BENCHMARK)
    if (~keep).any():
        notes.append(f"ablation: ignored {int((~keep).sum())} runs that are not epinet on {ABLATION_BENCHMARK}")
    abl = abl[keep]
    if abl.empty:
        raise NoData(f"no ablation runs of epinet on {ABLATION_BENCHMARK}")
    full = frame[(frame["experiment"] == "main") & (frame["strategy"] == "epinet") & (frame["benchmark"] == ABLATION_BENCHMARK)]
    if full.empty:
        notes.append(f"ablation: no main-experiment epinet run on {ABLATION_BENCHMARK}, so no differences to full")
    else:
        for variant, group in abl.groupby("variant"):
            for key in ("memory", "epochs", "backbone"):
                if set(group[key].dropna()) != set(full[key].dropna()):
                    notes.append(f"ablation: variant {variant} has {key} {sorted(set(group[key].dropna()))}, full has {sorted(set(full[key].dropna()))}")
    return full, abl, notes


def memory_runs(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str], set]:
    """(runs per memory budget on split-mnist, notes, the budgets taken from the main experiment)."""
    mem = frame[frame["experiment"] == "memory"]
    if mem.empty:
        raise NoData("no memory-experiment runs (experiment: memory)")
    notes = []
    keep = mem["benchmark"] == MEMORY_BENCHMARK
    if (~keep).any():
        notes.append(f"memory: ignored {int((~keep).sum())} runs not on {MEMORY_BENCHMARK}")
    mem = mem[keep]
    if mem.empty:
        raise NoData(f"no memory-experiment runs on {MEMORY_BENCHMARK}")
    strategies = set(mem["strategy"])
    main = frame[(frame["experiment"] == "main") & (frame["benchmark"] == MEMORY_BENCHMARK) & frame["strategy"].isin(strategies)]
    # the main experiment supplies each strategy's default budget (500) unless the memory experiment ran it too
    own = np.array([m not in set(mem.loc[mem["strategy"] == s, "memory"]) for s, m in zip(main["strategy"], main["memory"])], dtype=bool)
    main = main.loc[own]
    return pd.concat([mem, main], ignore_index=True), notes, set(main["memory"].dropna().astype(int))


def pooling_notes(runs: pd.DataFrame, keys: list[str], what: str) -> list[str]:
    """Say where one cell pools runs of different configurations or repeats a seed."""
    notes = []
    for key, group in runs.groupby(keys):
        label = " / ".join(map(str, key if isinstance(key, tuple) else (key,)))
        hashes = sorted(set(group["config_hash"].dropna()))
        if len(hashes) > 1:
            notes.append(f"{what}: {label} pools {len(hashes)} different configurations ({', '.join(hashes)})")
        if group["seed"].duplicated().any():
            notes.append(f"{what}: {label} has seed(s) {sorted(set(group.loc[group['seed'].duplicated(), 'seed']))} more than once")
    return notes


# ----------------------------------------------------------------------------- statistics


def welch(a, b) -> tuple[float, float, float]:
    """(t, degrees of freedom, two-sided p) of Welch's t-test of ``a`` against ``b``; NaNs where undefined."""
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 2 or len(b) < 2 or (a.var(ddof=1) == 0 and b.var(ddof=1) == 0):
        return math.nan, math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(a, b, equal_var=False)
    return float(res.statistic), float(res.df), float(res.pvalue)


def stars(p: float) -> str:
    if not math.isfinite(p):
        return ""
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


def human_bytes(n: float) -> str:
    """Decimal units: ``1576000`` -> ``1.6 MB``."""
    if n is None or not math.isfinite(n):
        return "—"
    if abs(n) < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000
        if round(abs(n), 1) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}"


# ----------------------------------------------------------------------------- cells and rendering


@dataclass(frozen=True)
class Stat:
    """A mean (± std over n seeds) cell; ``signed`` for a difference."""

    mean: float
    std: float = math.nan
    n: int = 1
    bold: bool = False
    mark: str = ""
    signed: bool = False


def cell(value, fmt: str) -> str:
    """Render a cell as Markdown (``md``) or LaTeX (``tex``)."""
    if isinstance(value, Stat):
        if not math.isfinite(value.mean):
            return DASH[fmt]
        text = f"{value.mean:+.3f}" if value.signed else f"{value.mean:.3f}"
        if value.n >= 2 and math.isfinite(value.std):
            text += (" $\\pm$ " if fmt == "tex" else " ± ") + f"{value.std:.3f}"
        if fmt == "tex" and value.signed:
            text = f"${text}$"
        if value.bold:
            text = f"\\textbf{{{text}}}" if fmt == "tex" else f"**{text}**"
        if value.mark:
            text += f"$^{{{value.mark}}}$" if fmt == "tex" else value.mark.replace("*", "\\*")
        return text
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH[fmt]
    text = str(value)
    return tex_escape(text) if fmt == "tex" else text.replace("|", "\\|")


def tex_escape(text: str) -> str:
    table = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "—": "--"}
    return "".join(table.get(c, c) for c in text)


@dataclass
class Column:
    md: str  # Markdown header (unique)
    tex: str  # LaTeX header under its group
    group: str = ""  # LaTeX spanning header (a benchmark, a strategy); "" for none


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[list]
    notes: list[tuple[str, str]]  # (Markdown, LaTeX)
    numbers: pd.DataFrame  # the CSV: one row per cell group, plain numbers

    def markdown(self) -> str:
        shown = pd.DataFrame([[cell(v, "md") for v in row] for row in self.rows], columns=[c.md for c in self.columns])
        text = shown.to_markdown(index=False, colalign=["left"] * len(self.columns), disable_numparse=True)
        return "\n\n".join([text, *(md for md, _ in self.notes)])

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
        notes = [f"\\par\\smallskip{{\\footnotesize {tex}}}" for _, tex in self.notes]
        end = lines.index("\\end{table}")
        lines[end:end] = notes
        header = f"% epinet-bench report: {self.title}. Needs \\usepackage{{booktabs}}."
        return "\n".join([header, *lines]) + "\n"

    def write(self, tables_dir: Path) -> list[Path]:
        tables_dir.mkdir(parents=True, exist_ok=True)
        paths = [tables_dir / f"{self.name}.{ext}" for ext in ("md", "tex", "csv")]
        paths[0].write_text(self.markdown() + "\n")
        paths[1].write_text(self.latex())
        self.numbers.to_csv(paths[2], index=False)
        return paths


def _stat(values: pd.Series, **kw) -> Stat:
    values = values.dropna()
    if values.empty:
        return Stat(math.nan, n=0, **kw)
    return Stat(float(values.mean()), float(values.std()) if len(values) > 1 else math.nan, len(values), **kw)


def _best(means: dict[str, float], highest: bool) -> set[str]:
    """Strategies whose mean, rounded as shown, is the best; none when fewer than two compete."""
    shown = {s: round(m, 3) for s, m in means.items() if math.isfinite(m)}
    if len(shown) < 2:
        return set()
    best = max(shown.values()) if highest else min(shown.values())
    return {s for s, m in shown.items() if m == best}


STD_NOTE = (
    "Mean ± sample standard deviation (pandas, ddof = 1) over the n seeds of each cell (± left out when n = 1).",
    r"Mean $\pm$ sample standard deviation (ddof $=1$) over the $n$ seeds of each cell ($\pm$ left out when $n=1$).",
)


# ----------------------------------------------------------------------------- the three tables


def main_table(runs: pd.DataFrame) -> Table:
    if runs.empty:
        raise NoData("no main-experiment runs (experiment: main)")
    benchmarks, strategies = benchmark_order(runs["benchmark"]), strategy_order(runs["strategy"])
    upper = upper_bounds(runs)
    stats = summary(runs, metrics=("final_accuracy", "average_forgetting", "memory_bytes"), keys=("benchmark", "strategy"))
    stats = stats.set_index(["benchmark", "strategy"])
    memory = runs.groupby("strategy")["memory_bytes"].mean()

    cells, numbers, untested = {}, [], []
    for bench in benchmarks:
        here = runs[runs["benchmark"] == bench]
        reference = here.loc[here["strategy"] == REFERENCE, "final_accuracy"]
        if reference.empty:
            untested.append(bench)
        acc = {s: stats.loc[(bench, s), "final_accuracy_mean"] for s in strategies if (bench, s) in stats.index and s not in upper}
        forg = {s: stats.loc[(bench, s), "average_forgetting_mean"] for s in strategies if (bench, s) in stats.index and s not in upper}
        best_acc, best_forg = _best(acc, highest=True), _best(forg, highest=False)
        for s in strategies:
            group = here[here["strategy"] == s]
            t, df, p = (math.nan,) * 3 if s == REFERENCE or reference.empty or group.empty else welch(group["final_accuracy"], reference)
            a = _stat(group["final_accuracy"], bold=s in best_acc, mark=stars(p))
            f = _stat(group["average_forgetting"], bold=s in best_forg)
            cells[bench, s] = (a, f, len(group))
            if not group.empty:
                numbers.append({
                    "strategy": s, "benchmark": bench, "n": len(group),
                    "final_accuracy_mean": a.mean, "final_accuracy_std": a.std,
                    "average_forgetting_mean": f.mean, "average_forgetting_std": f.std,
                    "memory_bytes_mean": float(group["memory_bytes"].mean()),
                    "welch_t_vs_replay": t, "welch_df_vs_replay": df, "p_vs_replay": p, "significance": stars(p),
                    "best_final_accuracy": s in best_acc, "best_average_forgetting": s in best_forg, "upper_bound": s in upper,
                })

    columns = [Column("strategy", "Strategy")]
    for bench in benchmarks:
        columns += [
            Column(f"{bench} final acc", r"Acc.~$\uparrow$", bench),
            Column(f"{bench} forgetting", r"Forg.~$\downarrow$", bench),
            Column(f"{bench} n", "$n$", bench),
        ]
    columns.append(Column("memory", "Memory"))
    rows = []
    for s in strategies:
        row = [s]
        for bench in benchmarks:
            a, f, n = cells[bench, s]
            row += [a, f, n]
        row.append(human_bytes(memory.get(s, math.nan)))
        rows.append(row)

    excluded = ", ".join(s for s in strategies if s in upper)
    verb, it, trains, its = ("is", "it", "trains", "its") if len(upper) < 2 else ("are", "they", "train", "their")
    notes = [
        (
            STD_NOTE[0] + " Final acc: accuracy on the whole test stream after the last experience (higher is better); forgetting: average forgetting (lower is better).",
            STD_NOTE[1] + r" Acc.: accuracy on the whole test stream after the last experience; Forg.: average forgetting.",
        ),
        (
            f"**Bold**: best mean of the column (as rounded here) among the continual strategies; {excluded} {verb} excluded: {it} {trains} on all experiences at once, an upper bound, and {its} forgetting is not defined (—)."
            if excluded
            else "**Bold**: best mean of the column (as rounded here).",
            rf"\textbf{{Bold}}: best mean of the column (as rounded here) among the continual strategies; {tex_escape(excluded)} {verb} excluded: {it} {trains} on all experiences at once, an upper bound, and {its} forgetting is not defined (--)."
            if excluded
            else r"\textbf{Bold}: best mean of the column (as rounded here).",
        ),
        (
            f"\\* p < 0.05, \\*\\* p < 0.01: Welch's t-test (two-sided, unequal variances; scipy.stats.ttest_ind with equal_var=False) of final accuracy over seeds against reservoir replay ({REFERENCE}), per benchmark; no marker where p ≥ 0.05 or either side has fewer than 2 seeds."
            + (f" No test on {', '.join(untested)}: {REFERENCE} has no runs there." if untested else ""),
            rf"$^{{*}}$ $p<0.05$, $^{{**}}$ $p<0.01$: Welch's $t$-test (two-sided, unequal variances) of final accuracy over seeds against reservoir replay ({REFERENCE}), per benchmark; no marker where $p \geq 0.05$ or either side has fewer than 2 seeds."
            + (f" No test on {tex_escape(', '.join(untested))}: {REFERENCE} has no runs there." if untested else ""),
        ),
        (
            "Memory: mean memory_bytes over the strategy's runs, what it keeps besides the network (replay buffer; EWC's parameter copies and Fisher importances; EpiNet's episodic memory); 1 MB = 10^6 bytes.",
            r"Memory: mean bytes the strategy keeps besides the network over its runs (replay buffer; EWC's parameter copies and Fisher importances; EpiNet's episodic memory); 1~MB $=10^6$ bytes.",
        ),
    ]
    title = "Final accuracy and average forgetting per strategy and benchmark"
    return Table("main", title, columns, rows, notes, pd.DataFrame(numbers))


def ablation_table(frame: pd.DataFrame) -> tuple[Table, list[str]]:
    full, abl, notes = ablation_runs(frame)
    groups = [(FULL_LABEL, "main", full)] + [(v, "ablation", abl[abl["variant"] == v]) for v in ordered(abl["variant"], ABLATION_ORDER)]
    ref_acc, ref_forg = _stat(full["final_accuracy"]), _stat(full["average_forgetting"])
    rows, numbers = [], []
    for label, experiment, group in groups:
        a, f = _stat(group["final_accuracy"]), _stat(group["average_forgetting"])
        is_full = label == FULL_LABEL
        da = Stat(a.mean - ref_acc.mean if not is_full else math.nan, signed=True)
        df = Stat(f.mean - ref_forg.mean if not is_full else math.nan, signed=True)
        rows.append([label, a, da, f, df, len(group)])
        numbers.append({
            "variant": label, "experiment": experiment, "n": len(group),
            "final_accuracy_mean": a.mean, "final_accuracy_std": a.std, "delta_final_accuracy": da.mean,
            "average_forgetting_mean": f.mean, "average_forgetting_std": f.std, "delta_average_forgetting": df.mean,
        })
    columns = [
        Column("variant", "Variant"),
        Column("final acc", r"Acc.~$\uparrow$"),
        Column("Δ acc", r"$\Delta$ Acc."),
        Column("forgetting", r"Forg.~$\downarrow$"),
        Column("Δ forgetting", r"$\Delta$ Forg."),
        Column("n", "$n$"),
    ]
    table_notes = [
        (
            STD_NOTE[0] + f" EpiNet on {ABLATION_BENCHMARK}; {FULL_LABEL}: the main experiment's EpiNet runs; every other row switches off or replaces one component (its variant name in the ablation sweep).",
            STD_NOTE[1] + f" EpiNet on {ABLATION_BENCHMARK}; {tex_escape(FULL_LABEL)}: the main experiment's EpiNet runs; every other row switches off or replaces one component.",
        ),
        ("Δ: difference of means, variant minus full.", r"$\Delta$: difference of means, variant minus full."),
    ]
    title = f"EpiNet ablations on {ABLATION_BENCHMARK}"
    return Table("ablation", title, columns, rows, table_notes, pd.DataFrame(numbers)), notes


def memory_table(frame: pd.DataFrame) -> tuple[Table, list[str]]:
    runs, notes, from_main = memory_runs(frame)
    strategies = strategy_order(runs["strategy"])
    sizes = sorted(int(m) for m in runs["memory"].dropna().unique())
    columns = [Column("memory (items)", "Budget")]
    for s in strategies:
        columns += [Column(f"{s} final acc", r"Acc.~$\uparrow$", s), Column(f"{s} n", "$n$", s), Column(f"{s} bytes", "Bytes", s)]
    rows, numbers = [], []
    for size in sizes:
        row = [size]
        for s in strategies:
            group = runs[(runs["strategy"] == s) & (runs["memory"] == size)]
            a = _stat(group["final_accuracy"])
            row += [a, len(group), human_bytes(float(group["memory_bytes"].mean())) if len(group) else None]
            if len(group):
                numbers.append({
                    "strategy": s, "memory": size, "experiment": ",".join(sorted(set(group["experiment"]))), "n": len(group),
                    "final_accuracy_mean": a.mean, "final_accuracy_std": a.std, "memory_bytes_mean": float(group["memory_bytes"].mean()),
                })
        rows.append(row)
    main_sizes = ", ".join(map(str, sorted(from_main)))
    table_notes = [
        (
            STD_NOTE[0] + f" Final accuracy on {MEMORY_BENCHMARK} per memory budget (items kept); bytes: mean memory_bytes, 1 MB = 10^6 bytes."
            + (f" Budget {main_sizes}: the main experiment's runs." if from_main else ""),
            STD_NOTE[1] + f" Final accuracy on {MEMORY_BENCHMARK} per memory budget (items kept); bytes: mean memory held, 1~MB $=10^6$ bytes."
            + (f" Budget {main_sizes}: the main experiment's runs." if from_main else ""),
        )
    ]
    title = f"Final accuracy against memory budget on {MEMORY_BENCHMARK}"
    return Table("memory", title, columns, rows, table_notes, pd.DataFrame(numbers)), notes


# ----------------------------------------------------------------------------- README block


def readme_table(results_dir: str | Path = "results") -> str:
    """The Markdown block the README embeds between its main-table markers (main experiment only)."""
    runs = load_runs(results_dir)
    main, _ = main_runs(runs.frame, allow_adhoc=False)
    if main.empty:
        raise ValueError(f"no main-experiment runs under {results_dir}: nothing to put in the README")
    return main_table(main).markdown()


def readme_block(text: str, where: str = "README") -> tuple[int, int]:
    """(start, end) offsets of the text between the main-table markers."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < 0 or end < start:
        raise ValueError(f"{where} has no {README_START} ... {README_END} markers (add them, in that order, where the main table belongs)")
    return start + len(README_START), end


def embedded_table(readme: str | Path) -> str:
    text = Path(readme).read_text()
    start, end = readme_block(text, str(readme))
    return text[start:end].strip("\n")


def update_readme(readme: str | Path, results_dir: str | Path) -> bool:
    """Rewrite the block between the markers with ``readme_table``; True if the file changed."""
    path = Path(readme)
    try:
        with open(path, newline="") as f:
            text = f.read()
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror or err}") from None
    start, end = readme_block(text, str(path))
    newline = "\r\n" if "\r\n" in text else "\n"
    block = readme_table(results_dir).replace("\n", newline)
    new = text[:start] + newline + block + newline + text[end:]
    if new == text:
        return False
    with open(path, "w", newline="") as f:
        f.write(new)
    return True


# ----------------------------------------------------------------------------- the command


def report(results_dir: str | Path = "results", update_readme_path: str | Path | None = None, figures: bool = True, out: Callable = print, log: Callable | None = None) -> int:
    """Write every table (and figure) the runs allow; 0 if anything was rendered, 2 otherwise.

    Problems go to ``log`` (stderr), one line each; written files and the main table to ``out``."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    root = Path(results_dir)
    runs = load_runs(root)
    for problem in runs.problems:
        log(problem)
    frame = runs.frame
    if frame.empty:
        log(f"epinet-bench report: nothing to report: no readable runs under {root} (run `epinet-bench sweep CONFIG --results {root}` first)")
        return 2

    counts = frame["experiment"].value_counts()
    out(f"read {len(frame)} runs from {root}: " + ", ".join(f"{n} {experiment}" for experiment, n in counts.items()))
    main, adhoc_note = main_runs(frame)
    for note in ([adhoc_note] if adhoc_note else []) + pooling_notes(main, ["strategy", "benchmark"], "main"):
        log(note)
    rendered: list[Path] = []
    tables_dir, figures_dir = root / "tables", root / "figures"

    def attempt(what: str, build: Callable):
        try:
            made = build()
        except NoData as err:
            log(f"skipped {what}: {err}")
            return None
        except Exception as err:  # one broken artifact must not stop the others
            log(f"could not render {what}: {type(err).__name__}: {err}")
            return None
        return made

    main_tab = attempt("tables/main", lambda: main_table(main))

    def table_step(name: str, build: Callable):
        def step():
            made = build()
            table, notes = made if isinstance(made, tuple) else (made, [])
            for note in notes:
                log(note)
            paths = table.write(tables_dir)
            return paths

        paths = attempt(f"tables/{name}", step)
        if paths:
            rendered.extend(paths)
            out(f"wrote {tables_dir / name}.{{md,tex,csv}}")

    if main_tab is not None:
        table_step("main", lambda: main_tab)
    table_step("ablation", lambda: ablation_table(frame))
    table_step("memory", lambda: memory_table(frame))

    def tuning_step():
        try:
            table = tuning.selection_table(frame)
        except tuning.NoTuningRuns as err:
            raise NoData(str(err)) from None
        out(tuning.markdown(table))
        return tuning.write(table, tables_dir)

    paths = attempt("tables/tuning", tuning_step)
    if paths:
        rendered.extend(paths)
        out(f"wrote {tables_dir / 'tuning'}.{{md,csv}}")

    try:
        if not figures:
            raise NoData("figures not requested")
        import matplotlib

        matplotlib.use("Agg")
        from benchmarks import plots
    except NoData:
        pass
    except Exception as err:
        log(f"skipped figures: cannot load matplotlib/seaborn: {type(err).__name__}: {err}")
    else:
        steps = [
            ("figures/seen_accuracy", lambda: plots.seen_accuracy(main, figures_dir)),
            ("figures/accuracy_matrix", lambda: plots.accuracy_matrices(main, figures_dir, log=log)),
            ("figures/forgetting", lambda: plots.forgetting(main, figures_dir)),
            ("figures/ablation", lambda: plots.ablation(*ablation_runs(frame)[:2], figures_dir)),
            ("figures/memory", lambda: plots.memory(memory_runs(frame)[0], figures_dir)),
        ]
        for what, build in steps:
            paths = attempt(what, build)
            if paths:
                rendered.extend(paths)
                stems = sorted({p.with_suffix("") for p in paths})
                out("wrote " + ", ".join(f"{s}.{{png,pdf}}" for s in stems))

    status = 0 if rendered else 2
    if update_readme_path is not None:
        try:
            changed = update_readme(update_readme_path, root)
            out(f"{'updated' if changed else 'unchanged'}: main table in {update_readme_path}")
        except (ValueError, OSError) as err:
            log(f"epinet-bench report: README not updated: {err}")
            status = 2
    if main_tab is not None:
        out("")
        out(f"{main_tab.title} ({len(main)} runs, {root}):")
        out(main_tab.markdown())
    if not rendered:
        known = ", ".join(repr(e) for e in ("main", "ablation", "memory", "adhoc"))
        log(f"epinet-bench report: nothing rendered from {root}: its runs belong to experiment(s) {', '.join(map(repr, counts.index))}; the report reads {known}")
    return status
