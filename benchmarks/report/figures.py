"""Figures of ``epinet-bench report`` (seaborn on matplotlib's Agg backend; PNG and PDF).

* ``seen_accuracy``             (a) accuracy on the experiences seen so far after each training experience
* ``accuracy_matrix_<bench>``   (b) accuracy matrix per strategy, mean over seeds
* ``forgetting``                (c) average forgetting per strategy and benchmark
* ``ablation``                  (d) final accuracy of the ablated strategy, full against each variant
* ``memory``                    (e) final accuracy against memory budget (log x)

(d) and (e) get a ``-<strategy>-<benchmark>`` / ``-<benchmark>`` suffix where the runs hold
several ablation studies or memory series, like their tables.

Bands and error bars are ± one standard deviation over seeds (seaborn ``errorbar="sd"``); with
one seed there is none. Figures are built as ``matplotlib.figure.Figure`` objects, never shown.
Each function returns the paths it wrote or raises ``selection.NoData``. Importing this module
selects the Agg backend, so figures render without a display.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot/seaborn load a backend: no display is needed or used

import pandas as pd
import seaborn as sns
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, NullLocator

from benchmarks.aggregate import mean_matrices, seen_accuracy_frame
from benchmarks.report.builders import FULL_LABEL
from benchmarks.report.order import (
    CMAP,
    STRATEGY_ORDER,
    benchmark_order,
    matrix_row_labels,
    name,
    strategy_order,
    variant_order,
)
from benchmarks.report.selection import Ablation, MemorySeries, NoData, upper_bounds

MATRICES_PER_ROW = 5  # heatmaps per row of an accuracy-matrix figure


def palette(strategies) -> dict[str, tuple]:
    """One colour per strategy, the same in every figure (known strategies keep theirs)."""
    colours = sns.color_palette("colorblind", 10)
    fixed = {"naive": 7, "ewc": 1, "replay": 2, "epinet": 0, "joint": 4}  # grey, orange, green, blue, pink
    # the colorblind colours no fixed strategy uses, then the "dark" palette's, in display order
    spare = [colours[i] for i in (9, 5, 3, 8, 6)] + sns.color_palette("dark", 10)
    others = [s for s in strategy_order([*STRATEGY_ORDER, *strategies]) if s not in fixed]
    return {
        **{s: colours[i] for s, i in fixed.items()},
        **{s: spare[k % len(spare)] for k, s in enumerate(others)},
    }


def save(fig: Figure, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.pdf"
    fig.savefig(png, dpi=150)
    fig.savefig(pdf, metadata={"CreationDate": None})
    return [png, pdf]


def seen_accuracy(runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """(a) One panel per benchmark: mean accuracy on the experiences seen so far, band ± sd over seeds."""
    if runs.empty:
        raise NoData("no main-role runs")
    upper = upper_bounds(runs)
    benchmarks, strategies = benchmark_order(runs["benchmark"]), strategy_order(runs["strategy"])
    colours = palette(strategies)
    continual = runs[~runs["strategy"].isin(upper)]
    long = seen_accuracy_frame(continual)
    fig = Figure(figsize=(4.0 * len(benchmarks) + 1.8, 3.6), layout="constrained")
    axes = fig.subplots(1, len(benchmarks), sharey=True, squeeze=False)[0]
    for ax, bench in zip(axes, benchmarks):
        data = long[long["benchmark"] == bench]
        if not data.empty:
            order = [s for s in strategies if s in set(data["strategy"])]
            sns.lineplot(
                data=data,
                x="experience",
                y="seen_accuracy",
                hue="strategy",
                hue_order=order,
                palette=colours,
                errorbar="sd",
                marker="o",
                legend=False,
                ax=ax,
            )
            ax.xaxis.set_major_locator(FixedLocator(sorted(data["experience"].unique())))
        for s in strategies:
            if s in upper:
                final = runs.loc[(runs["benchmark"] == bench) & (runs["strategy"] == s), "final_accuracy"]
                if len(final):
                    ax.axhline(final.mean(), color=colours[s], linestyle="--", linewidth=1.2)
        ax.set(title=bench, xlabel="after training experience", ylabel="accuracy on seen experiences", ylim=(0, 1.02))
    handles = [
        Line2D(
            [],
            [],
            color=colours[s],
            marker=None if s in upper else "o",
            linestyle="--" if s in upper else "-",
            label=f"{s} (upper bound)" if s in upper else s,
        )
        for s in strategies
    ]
    fig.legend(handles=handles, loc="outside right center", frameon=False)
    return save(fig, out_dir / "seen_accuracy")


def accuracy_matrices(runs: pd.DataFrame, out_dir: Path, log: Callable = print) -> list[Path]:
    """(b) One figure per benchmark, one annotated heatmap per strategy: R[i][j] averaged over seeds."""
    if runs.empty:
        raise NoData("no main-role runs")
    means = mean_matrices(runs, lambda message: log(f"figures/accuracy_matrix: {message}"))
    paths = []
    for bench in benchmark_order(runs["benchmark"]):
        strategies = [s for s in strategy_order(runs["strategy"]) if (bench, s) in means]
        n_exp = max(means[bench, s][0].shape[1] for s in strategies)
        side = 0.42 * n_exp + 0.9
        ncols = min(len(strategies), MATRICES_PER_ROW)
        nrows = math.ceil(len(strategies) / ncols)
        fig = Figure(figsize=(side * ncols + 1.0, (side + 0.3) * nrows + 0.3), layout="constrained")
        grid = fig.subplots(nrows, ncols, squeeze=False)
        axes = list(grid.flat)[: len(strategies)]
        for ax in list(grid.flat)[len(strategies) :]:
            ax.set_axis_off()
        for ax, s in zip(axes, strategies):
            matrix, seeds = means[bench, s]
            rows, cols = matrix.shape
            sns.heatmap(
                matrix,
                ax=ax,
                vmin=0,
                vmax=1,
                cmap=CMAP,
                cbar=False,
                square=True,
                annot=True,
                fmt=".2f",
                annot_kws={"size": 6 if cols > 6 else 8},
                xticklabels=list(range(1, cols + 1)),
                yticklabels=matrix_row_labels(rows, cols),
            )
            ax.set(title=f"{s} (n={seeds})", xlabel="tested on experience")
            ax.tick_params(axis="y", rotation=0)
        for row in grid:
            row[0].set_ylabel("after training experience")
        fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=CMAP), ax=list(axes), shrink=0.8, label="accuracy")
        fig.suptitle(f"Accuracy matrix on {bench} (mean over seeds)")
        paths += save(fig, out_dir / f"accuracy_matrix_{bench}")
    return paths


def forgetting(runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """(c) Average forgetting per benchmark and strategy, bars ± sd over seeds (joint has none)."""
    if runs.empty:
        raise NoData("no main-role runs")
    upper = upper_bounds(runs)
    data = runs[~runs["strategy"].isin(upper) & runs["average_forgetting"].notna()]
    if data.empty:
        raise NoData("no runs with a defined forgetting (joint has none)")
    strategies = strategy_order(data["strategy"])
    benchmarks = benchmark_order(data["benchmark"])
    fig = Figure(figsize=(1.2 + 0.5 * len(strategies) * len(benchmarks) + 1.5, 3.6), layout="constrained")
    ax = fig.subplots()
    sd_bars(ax, data, "benchmark", "average_forgetting", "strategy", benchmarks, strategies, palette(strategies), 0.15)
    ax.set(
        xlabel="",
        ylabel="average forgetting (lower is better)",
        ylim=(0, max(1.0, float(data["average_forgetting"].max()) + 0.05)),
    )
    ax.set_title(
        "Average forgetting, mean ± sd over seeds" + (f" ({', '.join(sorted(upper))}: not defined)" if upper else ""),
        fontsize=10,
    )
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title=None)
    return save(fig, out_dir / "forgetting")


def sd_bars(ax, data, x, y, hue, order, hue_order, colours, capsize, **extra) -> None:
    """Bars of the mean with ± 1 sd whiskers over seeds, as every bar figure here draws them."""
    sns.barplot(
        data=data, x=x, y=y, hue=hue, order=order, hue_order=hue_order, palette=colours,
        errorbar="sd", capsize=capsize, err_kws={"linewidth": 1}, ax=ax, **extra,
    )  # fmt: skip


def ablation(study: Ablation, out_dir: Path, stem: str = "ablation") -> list[Path]:
    """(d) Final accuracy of the ablated strategy: full (main role) and each variant, bars ± sd."""
    full, variants = study.full, study.variants
    if variants.empty:
        raise NoData("no ablation runs")
    labels = ([FULL_LABEL] if not full.empty else []) + variant_order(variants["variant"])
    data = pd.concat([full.assign(label=FULL_LABEL), variants.assign(label=variants["variant"])], ignore_index=True)
    colour = palette([study.strategy])[study.strategy]
    colours = {label: (colour if label == FULL_LABEL else (0.62, 0.62, 0.62)) for label in labels}
    fig = Figure(figsize=(1.5 + 0.75 * len(labels), 3.8), layout="constrained")
    ax = fig.subplots()
    sd_bars(ax, data, "label", "final_accuracy", "label", labels, labels, colours, 0.2, legend=False)
    if not full.empty:
        ax.axhline(full["final_accuracy"].mean(), color=colour, linestyle="--", linewidth=1)
    ax.set(xlabel="", ylabel="final accuracy", ylim=(0, 1.02))
    ax.set_title(f"{name(study.strategy)} ablations on {study.benchmark}, mean ± sd over seeds", fontsize=10)
    ax.tick_params(axis="x", rotation=30)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    return save(fig, out_dir / stem)


def memory(series: MemorySeries, out_dir: Path, stem: str = "memory") -> list[Path]:
    """(e) Final accuracy against memory budget (log x) per strategy, band ± sd over seeds."""
    runs = series.runs
    if runs.empty:
        raise NoData("no memory runs")
    strategies = strategy_order(runs["strategy"])
    data = runs.assign(memory=runs["memory"].astype(float))
    fig = Figure(figsize=(5.6, 3.8), layout="constrained")
    ax = fig.subplots()
    sns.lineplot(
        data=data,
        x="memory",
        y="final_accuracy",
        hue="strategy",
        hue_order=strategies,
        palette=palette(strategies),
        errorbar="sd",
        marker="o",
        ax=ax,
    )
    ax.set_xscale("log")
    sizes = sorted(data["memory"].dropna().unique())
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{int(s)}" for s in sizes])
    ax.set(xlabel="memory budget (items, log scale)", ylabel="final accuracy", ylim=(0, 1.02))
    ax.set_title(f"Final accuracy against memory on {series.benchmark}, mean ± sd over seeds", fontsize=10)
    sns.move_legend(ax, "lower right", frameon=False, title=None)
    return save(fig, out_dir / stem)
