"""The runs section of ``index.html``: for every group of runs the page's tables show, the accuracy
matrix averaged over seeds as a heatmap, and each seed's run with its config and code version.

A group is one benchmark and strategy of one role's runs: the main-role runs (the main table's,
or the ad-hoc runs it falls back to) by benchmark and strategy, as the main table pools them;
every other role (ablation variants, memory budgets, tuning and reproduction runs) by experiment,
variant, benchmark and strategy, the cells of its tables. The nested results directories add
the roles the page shows from them (tuning, reproduction: results/tuning, results/der2020).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from benchmarks.aggregate import mean_matrices
from benchmarks.provenance import short_version
from benchmarks.report.order import CMAP, benchmark_order, matrix_row_labels, ordered, strategy_order, variant_order
from benchmarks.report.selection import load_runs, nested_results
from benchmarks.roles import ROLES
from benchmarks.units import human_bytes

NESTED_ROLES = ("tuning", "reproduction")  # what the page shows of a nested results directory


HEAT_STEPS = 100  # heatmap colours in steps of 0.01, the precision of the accuracies shown in the cells


def heat_css() -> str:
    """One CSS class per colour of the heatmaps (``.h0`` ... ``.h100``, ``.hnan``): the page names a
    cell's class instead of repeating its colours in thousands of cells (the figures' colour map)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    rules = [".hnan{background:#fff;color:#222}"]
    for step in range(HEAT_STEPS + 1):
        value = step / HEAT_STEPS
        text = "#fff" if value < 0.6 else "#000"  # viridis is dark below about 0.6
        rules.append(f".h{step}{{background:{to_hex(colormaps[CMAP](value))};color:{text}}}")
    return "\n".join(rules)


def heat(value: float) -> dict:
    """One accuracy in [0, 1] as a heatmap cell: its colour class, its text and its exact value."""
    if not math.isfinite(value):
        return {"css": "hnan", "text": "—", "value": ""}
    return {
        "css": f"h{round(min(max(value, 0.0), 1.0) * HEAT_STEPS)}",
        "text": f"{value:.2f}",
        "value": repr(float(value)),
    }


def run_view(run: dict) -> dict:
    final, forgetting, memory = run["final_accuracy"], run["average_forgetting"], run["memory_bytes"]
    dirty = None if pd.isna(run["git_dirty"]) else bool(run["git_dirty"])
    return {
        "seed": run["seed"],
        "final": repr(final),
        "final_text": f"{final:.3f}",
        "forgetting": repr(forgetting) if math.isfinite(forgetting) else "",
        "forgetting_text": f"{forgetting:.3f}" if math.isfinite(forgetting) else "—",
        "memory_bytes": repr(memory),
        "memory_text": human_bytes(memory),
        "version": short_version(run["git_commit"] if isinstance(run["git_commit"], str) else None, dirty),
        "config_hash": run["config_hash"],
        "config": json.dumps(run["config"], indent=2, sort_keys=True),
    }


def group_view(runs: pd.DataFrame, anchor: str, title: str, log: Callable) -> dict:
    """One group's heatmap (the mean over its seeds) and run list; its runs share a benchmark and strategy."""
    ((matrix, seeds),) = mean_matrices(runs, log).values()
    rows, cols = matrix.shape
    return {
        "id": anchor,
        "title": title,
        "seeds": seeds,
        "columns": list(range(1, cols + 1)),
        "matrix": [
            {"label": label, "cells": [heat(v) for v in row]}
            for label, row in zip(matrix_row_labels(rows, cols), matrix)
        ],
        "runs": [run_view(run) for run in runs.sort_values("seed").to_dict("records")],
    }


def by_benchmark_and_strategy(runs: pd.DataFrame):
    """(benchmark, strategy, their runs) in the tables' display order."""
    for bench in benchmark_order(runs["benchmark"]):
        here = runs[runs["benchmark"] == bench]
        for strategy in strategy_order(here["strategy"]):
            yield bench, strategy, here[here["strategy"] == strategy]


def role_groups(frame: pd.DataFrame, role: str, where: str, log: Callable) -> list[dict]:
    """One group per configuration (config hash: its seeds) of one role's runs, per experiment, then
    benchmark and strategy, then variant (known ablation variants first) or, for the memory role,
    budget. ``where``, in the anchors, names the nested folder the runs are in ("" for the page's own)."""
    runs = frame[frame["role"] == role]
    groups = []
    for experiment in ordered(runs["experiment"]):
        for bench, strategy, here in by_benchmark_and_strategy(runs[runs["experiment"] == experiment]):
            position = {v: i for i, v in enumerate(variant_order(here["variant"]))}
            configs = here.drop_duplicates("config_hash").to_dict("records")
            # the memory role's by budget (m100, m200, m1000), the others' known ablation variants first
            configs.sort(key=lambda c: (c["memory"], position[c["variant"]])[:: 1 if role == "memory" else -1])
            for c in configs:
                title = f"{strategy} on {bench}, experiment {experiment}"
                title += "" if c["variant"] == "default" else f", variant {c['variant']}"
                title += f", memory {c['memory']:.0f}" if role == "memory" else ""
                anchor = "-".join(p for p in ("runs", where, experiment, c["config_hash"]) if p)
                groups.append(group_view(here[here["config_hash"] == c["config_hash"]], anchor, title, log))
    return groups


def run_blocks(root: Path, frame: pd.DataFrame, main: pd.DataFrame, log: Callable) -> list[dict]:
    """The runs section, one block per role that has runs here, then per nested results directory."""
    blocks = []
    if not main.empty:
        groups = [
            group_view(runs, f"runs-{bench}-{strategy}", f"{strategy} on {bench}", log)
            for bench, strategy, runs in by_benchmark_and_strategy(main)
        ]
        blocks.append({"heading": f"{main['role'].iloc[0].capitalize()} runs", "groups": groups})
    for role in ROLES:
        if role != "main" and (frame["role"] == role).any():
            blocks.append({"heading": f"{role.capitalize()} runs", "groups": role_groups(frame, role, "", log)})
    for sub in nested_results(root):
        nested = load_runs(sub).frame
        for role in NESTED_ROLES:
            if (nested["role"] == role).any():
                groups = role_groups(nested, role, sub.name, log)
                blocks.append({"heading": f"{role.capitalize()} runs in {sub.name}/", "groups": groups})
    return blocks
