"""The order and the names under which strategies, benchmarks and variants are shown, and how an
accuracy matrix is drawn: the one place every table, figure and page takes them from, so they agree."""

from __future__ import annotations

import pandas as pd

from benchmarks.scenarios import BENCHMARKS, ONLINE_SUFFIX

BENCHMARK_ORDER = tuple(name for b in BENCHMARKS for name in (b, b + ONLINE_SUFFIX))  # the registry's order

# Lower bound first, then the regularisers, the rehearsal baselines, the method under study, the
# upper bound last; unlisted strategies follow, sorted.
STRATEGY_ORDER = (
    "naive",
    "ewc",
    "ewc-online",
    "si",
    "lwf",
    "replay",
    "er-ace",
    "der",
    "derpp",
    "mir",
    "gss",
    "agem",
    "gem",
    "icarl",
    "gdumb",
    "epinet",
    "joint",
)
# The method this harness studies: every other continual strategy is a baseline (the main table
# marks the best baseline per benchmark).
METHOD = "epinet"
ABLATION_ORDER = (
    "no-recall",
    "no-decay",
    "random-salience",
    "one-expert",
    "no-reencode",
    "no-class-balance",
    "class-balanced",
)
# The accuracy matrices' colour map, in the figures and the page's heatmaps alike.
CMAP = "viridis"
# How prose names a strategy (its registry name otherwise), and how it describes a reference.
NAMES = {"epinet": "EpiNet", "ewc": "EWC"}
DESCRIPTIONS = {"replay": "reservoir replay (replay)"}


def ordered(values, preferred=()) -> list:
    """Distinct ``values``: those in ``preferred`` in that order, then the rest sorted."""
    present = set(pd.Series(values).dropna())
    return [v for v in preferred if v in present] + sorted(present - set(preferred), key=str)


def strategy_order(values) -> list[str]:
    return ordered(values, STRATEGY_ORDER)


def benchmark_order(values) -> list[str]:
    return ordered(values, BENCHMARK_ORDER)


def variant_order(values) -> list[str]:
    return ordered(values, ABLATION_ORDER)


def name(strategy: str) -> str:
    return NAMES.get(strategy, strategy)


def describe(strategy: str) -> str:
    return DESCRIPTIONS.get(strategy, strategy)


def matrix_row_labels(rows: int, cols: int) -> list:
    """An accuracy matrix's row labels: the training experience after which it was measured (1-based),
    or ``all`` for the one row of a strategy trained on every experience at once (joint)."""
    return ["all"] if rows == 1 and cols > 1 else list(range(1, rows + 1))
