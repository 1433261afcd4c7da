"""The numbers in a cell: mean ± sample std over seeds, Welch's t-test, best-of-column, byte
counts and the code versions a group of runs came from."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmarks.provenance import short_version


@dataclass(frozen=True)
class Stat:
    """A mean (± std over n seeds) cell; ``signed`` for a difference."""

    mean: float
    std: float = math.nan
    n: int = 1
    bold: bool = False
    mark: str = ""
    signed: bool = False
    digits: int = 3  # decimals shown (2 for percentages)


def stat(values: pd.Series, **kw) -> Stat:
    """Mean and sample std (pandas, ddof = 1; undefined for one seed) of the finite ``values``."""
    values = values.dropna()
    if values.empty:
        return Stat(math.nan, n=0, **kw)
    return Stat(float(values.mean()), float(values.std()) if len(values) > 1 else math.nan, len(values), **kw)


def welch(a, b) -> tuple[float, float, float]:
    """(t, degrees of freedom, two-sided p) of Welch's t-test of ``a`` against ``b``; NaNs where undefined."""
    from scipy import stats  # only the significance tests need scipy

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


def best(means: dict[str, float], highest: bool) -> set[str]:
    """Keys whose mean, rounded as shown, is the best; none when fewer than two compete."""
    shown = {s: round(m, 3) for s, m in means.items() if math.isfinite(m)}
    if len(shown) < 2:
        return set()
    top = max(shown.values()) if highest else min(shown.values())
    return {s for s, m in shown.items() if m == top}


def code_versions(runs: pd.DataFrame) -> str:
    """``Code version(s): 6dfd080 (27 runs), 810008c (26 runs)``: which code produced ``runs``, most runs first."""
    if runs.empty:
        return "Code version(s): none (no runs)."
    dirty = runs["git_dirty"].map(lambda d: None if pd.isna(d) else bool(d))
    versions = pd.Series(
        [short_version(c if isinstance(c, str) else None, d) for c, d in zip(runs["git_commit"], dirty)], dtype=object
    )
    counts = sorted(versions.value_counts().items(), key=lambda kv: (-kv[1], kv[0]))
    return "Code version(s): " + ", ".join(f"{v} ({n} run{'s' if n != 1 else ''})" for v, n in counts) + "."
