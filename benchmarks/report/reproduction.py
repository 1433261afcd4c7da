"""Published numbers beside reproduced ones.

The runs of a sweep experiment with role ``reproduction`` are compared with the published table
``benchmarks/configs/published/<experiment>.csv``: one row per published cell (method,
benchmark, buffer), in the file's order. A published row matches the runs of its ``strategy``
on its ``benchmark`` with ``memory == buffer`` (any memory where ``buffer`` is empty: the
method keeps no samples). Accuracies are shown in percent, as papers print them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from benchmarks.report.selection import NoData, load_runs, nested_results
from benchmarks.report.stats import Stat, code_versions, stat
from benchmarks.report.tables import Column, Table

PUBLISHED_DIR = Path(__file__).resolve().parents[1] / "configs" / "published"
PUBLISHED_COLUMNS = ("method", "strategy", "benchmark", "buffer", "published_mean", "published_std", "source")
TOLERANCE = 2.0  # points: a reproduced mean this close to the published one counts as reproduced
LEVEL = 0.95


def load_published(experiment: str, directory: Path | None = None) -> pd.DataFrame:
    """The published table of a reproduction experiment; ValueError naming the file and problem."""
    path = Path(directory or PUBLISHED_DIR) / f"{experiment}.csv"
    if not path.is_file():
        raise NoData(f"reproduction runs of {experiment!r} but no published table {path}")
    table = pd.read_csv(path, dtype={"method": str, "strategy": str, "benchmark": str, "source": str})
    missing = [c for c in PUBLISHED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(PUBLISHED_COLUMNS)}")
    for column in ("buffer", "published_mean", "published_std"):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = table[column].notna() & values.isna()
        if bad.any():
            row = int(bad.idxmax())
            raise ValueError(f"{path}, row {row + 2}: {column} {table[column][row]!r} is not a number")
        table[column] = values
    if table["published_mean"].isna().any():
        raise ValueError(f"{path}, row {int(table['published_mean'].isna().idxmax()) + 2}: published_mean is empty")
    return table


def confidence_interval(values: pd.Series, level: float = LEVEL) -> tuple[float, float]:
    """Student-t interval of the mean of ``values``; NaNs with fewer than two values."""
    from scipy import stats

    values = values.dropna()
    if len(values) < 2:
        return math.nan, math.nan
    half = stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std() / math.sqrt(len(values))
    return values.mean() - half, values.mean() + half


def reproduction_tables(frame: pd.DataFrame, directory: Path | None = None) -> list[Table]:
    runs = frame[frame["role"] == "reproduction"]
    if runs.empty:
        raise NoData("no reproduction-role runs")
    return [
        reproduction_table(experiment, group, load_published(experiment, directory))
        for experiment, group in runs.groupby("experiment", sort=True)
    ]


def _yes_no(flag: bool | None) -> str | None:
    return None if flag is None else ("yes" if flag else "**no**")


def reproduction_table(experiment: str, runs: pd.DataFrame, published: pd.DataFrame) -> Table:
    rows, numbers = [], []
    for row in published.itertuples(index=False):
        match = runs[(runs["strategy"] == row.strategy) & (runs["benchmark"] == row.benchmark)]
        if not math.isnan(row.buffer):
            match = match[match["memory"] == int(row.buffer)]
        ours = stat(100 * match["final_accuracy"], digits=2)
        low, high = confidence_interval(100 * match["final_accuracy"])
        diff = ours.mean - row.published_mean
        inside = None if math.isnan(low) else bool(low <= row.published_mean <= high)
        close = None if math.isnan(diff) else bool(abs(diff) <= TOLERANCE)
        buffer = "—" if math.isnan(row.buffer) else str(int(row.buffer))
        rows.append(
            [
                row.benchmark,
                row.method,
                buffer,
                # n only decides whether a std is shown: the source gives one or not
                Stat(row.published_mean, row.published_std, 2 if math.isfinite(row.published_std) else 1, digits=2),
                ours,
                ours.n,
                Stat(diff, signed=True, digits=2),
                None if math.isnan(low) else f"[{low:.2f}, {high:.2f}]",
                _yes_no(inside),
                _yes_no(close),
            ]
        )
        numbers.append(
            {
                "benchmark": row.benchmark,
                "method": row.method,
                "strategy": row.strategy,
                "buffer": row.buffer,
                "published_mean": row.published_mean,
                "published_std": row.published_std,
                "reproduced_mean": ours.mean,
                "reproduced_std": ours.std,
                "n": ours.n,
                "difference": diff,
                "ci_low": low,
                "ci_high": high,
                "published_in_ci": inside,
                "within_tolerance": close,
                "source": row.source,
            }
        )
    columns = [
        Column("benchmark", "Benchmark"),
        Column("method", "Method"),
        Column("buffer", "Buffer"),
        Column("published", "Published"),
        Column("reproduced", "Reproduced"),
        Column("n", "$n$"),
        Column("Δ", r"$\Delta$"),
        Column(f"{LEVEL:.0%} CI", "CI"),
        Column("published in CI", "In CI"),
        Column(f"within {TOLERANCE:g} points", "Close"),
    ]
    notes = [
        f"Final accuracy (%), mean ± sample standard deviation over the n seeds of this harness, beside the"
        f" published mean (± its std where the source gives one), from `benchmarks/configs/published/{experiment}.csv`."
        f" Δ: reproduced − published, in points. {LEVEL:.0%} CI: Student-t interval of our mean;"
        f" published in CI: whether the published mean lies inside it. Within {TOLERANCE:g} points: the"
        f" absolute difference is at most {TOLERANCE:g}. — where no run matches the published row.",
        code_versions(runs),
    ]
    title = f"Published vs reproduced: {experiment}"
    return Table(f"reproduction-{experiment}", title, columns, rows, notes, pd.DataFrame(numbers))


def nested_reproduction_tables(root: Path, log: Callable) -> list[tuple[Path, Table]]:
    """(folder, table) for each nested results directory's published-vs-reproduced tables
    (results/der2020); a folder whose tables cannot be built is named in ``log``."""
    found = []
    for sub in nested_results(root):
        frame = load_runs(sub).frame
        if not (frame["role"] == "reproduction").any():
            continue
        try:
            found += [(sub, table) for table in reproduction_tables(frame)]
        except (NoData, ValueError) as err:
            log(f"results page: reproduction runs under {sub}: {err}")
    return found
