"""What each table shows: the main comparison, the ablations, the memory series and the
hyperparameter selection, built from runs that ``selection`` picked."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from benchmarks.aggregate import mean_std
from benchmarks.report.order import METHOD, benchmark_order, describe, name, strategy_order, variant_order
from benchmarks.report.selection import (
    NoData,
    ablations,
    load_runs,
    memory_series,
    nested_results,
    reference_of,
    tuning_runs,
    upper_bounds,
)
from benchmarks.report.stats import Stat, best, code_versions, stars, stat, welch
from benchmarks.report.tables import Column, Table
from benchmarks.units import Bytes

FULL_LABEL = "full (main)"
STD_NOTE = "Mean ± sample standard deviation (pandas, ddof = 1) over the n seeds of each cell (± left out when n = 1)."
TUNING_BLOCK = ["experiment", "benchmark", "strategy"]  # one selection per block


def main_table(runs: pd.DataFrame) -> Table:
    """Every strategy on every benchmark of ``runs``: final accuracy, forgetting, seeds, memory."""
    if runs.empty:
        raise NoData("no main-role runs")
    reference, _ = reference_of(runs)
    benchmarks, strategies = benchmark_order(runs["benchmark"]), strategy_order(runs["strategy"])
    upper = upper_bounds(runs)
    memory = runs.groupby("strategy")["memory_bytes"].mean().to_dict()
    cells, numbers, untested = {}, [], []
    for bench in benchmarks:
        here = runs[runs["benchmark"] == bench]
        ref = here.loc[here["strategy"] == reference, "final_accuracy"]
        if reference is not None and ref.empty:
            untested.append(bench)
        means = {
            key: {
                s: here.loc[here["strategy"] == s, key].mean()
                for s in strategies
                if s not in upper and (here["strategy"] == s).any()
            }
            for key in ("final_accuracy", "average_forgetting")
        }
        best_acc, best_forg = (
            best(means["final_accuracy"], highest=True),
            best(means["average_forgetting"], highest=False),
        )
        best_baseline = best({s: m for s, m in means["final_accuracy"].items() if s != METHOD}, highest=True)
        for s in strategies:
            group = here[here["strategy"] == s]
            t, df, p = (
                (math.nan,) * 3 if s == reference or ref.empty or group.empty else welch(group["final_accuracy"], ref)
            )
            a = stat(group["final_accuracy"], bold=s in best_acc, mark=stars(p) + ("†" if s in best_baseline else ""))
            f = stat(group["average_forgetting"], bold=s in best_forg)
            cells[bench, s] = (a, f, len(group))
            if not group.empty:
                tests = (
                    {
                        f"welch_t_vs_{reference}": t,
                        f"welch_df_vs_{reference}": df,
                        f"p_vs_{reference}": p,
                        "significance": stars(p),
                    }
                    if reference
                    else {}
                )
                numbers.append(
                    {
                        "strategy": s,
                        "benchmark": bench,
                        "n": len(group),
                        "final_accuracy_mean": a.mean,
                        "final_accuracy_std": a.std,
                        "average_forgetting_mean": f.mean,
                        "average_forgetting_std": f.std,
                        "memory_bytes_mean": float(group["memory_bytes"].mean()),
                        **tests,
                        "best_final_accuracy": s in best_acc,
                        "best_average_forgetting": s in best_forg,
                        "best_baseline": s in best_baseline,
                        "upper_bound": s in upper,
                    }
                )
    columns = [Column("strategy", "Strategy")]
    for bench in benchmarks:
        columns += [
            Column(f"{bench} final acc", r"Acc.~$\uparrow$", bench),
            Column(f"{bench} forgetting", r"Forg.~$\downarrow$", bench),
            Column(f"{bench} n", "$n$", bench),
        ]
    columns.append(Column("memory", "Memory"))
    rows = [
        [s, *(x for bench in benchmarks for x in cells[bench, s]), Bytes(memory.get(s, math.nan))] for s in strategies
    ]

    excluded = ", ".join(s for s in strategies if s in upper)
    verb, it, trains, its = ("is", "it", "trains", "its") if len(upper) < 2 else ("are", "they", "train", "their")
    notes = [
        STD_NOTE
        + " Final acc: the unweighted mean, over the test experiences, of the accuracy on each after training on the"
        " last experience (higher is better); forgetting: average forgetting (lower is better).",
        "**Bold**: best mean of the column (as rounded here) among the continual strategies;"
        f" {excluded} {verb} excluded: {it} {trains} on all experiences at once, an upper bound,"
        f" and {its} forgetting is not defined (—)."
        if excluded
        else "**Bold**: best mean of the column (as rounded here).",
        f"†: best baseline, the highest mean final accuracy (as rounded here) among the continual strategies other"
        f" than {name(METHOD)}, the method under study.",
        "\\* p < 0.05, \\*\\* p < 0.01: Welch's t-test (two-sided, unequal variances;"
        " scipy.stats.ttest_ind with equal_var=False) of final accuracy over seeds"
        f" against {describe(reference)}, per benchmark;"
        " no marker where p ≥ 0.05 or either side has fewer than 2 seeds."
        + (f" No test on {', '.join(untested)}: {reference} has no runs there." if untested else "")
        if reference
        else "No significance test: the sweep declares no reference strategy (`reference:` on its main experiment).",
        "Memory: mean memory_bytes over the strategy's runs, what it keeps besides the network (stored samples,"
        " with their logits for DER and DER++; the regularisers' parameter copies and importances; LwF's previous"
        " model; EpiNet's episodic memory); 1 MB = 10^6 bytes.",
        code_versions(runs),
    ]
    title = "Final accuracy and average forgetting per strategy and benchmark"
    return Table("main", title, columns, rows, notes, pd.DataFrame(numbers))


def ablation_tables(frame: pd.DataFrame) -> tuple[list[Table], list[str]]:
    """One table per ablation study: the strategy's main-role runs (full) against each variant."""
    studies = ablations(frame)
    tables, notes = [], []
    for study in studies:
        full, abl, label = study.full, study.variants, f"{name(study.strategy)} on {study.benchmark}"
        groups = [(FULL_LABEL, "main", full)] + [
            (v, "ablation", abl[abl["variant"] == v]) for v in variant_order(abl["variant"])
        ]
        ref_acc, ref_forg = stat(full["final_accuracy"]), stat(full["average_forgetting"])
        rows, numbers = [], []
        for variant, experiment, group in groups:
            a, f = stat(group["final_accuracy"]), stat(group["average_forgetting"])
            is_full = variant == FULL_LABEL
            da = Stat(a.mean - ref_acc.mean if not is_full else math.nan, signed=True)
            df = Stat(f.mean - ref_forg.mean if not is_full else math.nan, signed=True)
            rows.append([variant, a, da, f, df, len(group)])
            numbers.append(
                {
                    "variant": variant,
                    "experiment": experiment,
                    "n": len(group),
                    "final_accuracy_mean": a.mean,
                    "final_accuracy_std": a.std,
                    "delta_final_accuracy": da.mean,
                    "average_forgetting_mean": f.mean,
                    "average_forgetting_std": f.std,
                    "delta_average_forgetting": df.mean,
                }
            )
        columns = [
            Column("variant", "Variant"),
            Column("final acc", r"Acc.~$\uparrow$"),
            Column("Δ acc", r"$\Delta$ Acc."),
            Column("forgetting", r"Forg.~$\downarrow$"),
            Column("Δ forgetting", r"$\Delta$ Forg."),
            Column("n", "$n$"),
        ]
        table_notes = [
            STD_NOTE + f" {label}; {FULL_LABEL}: the main experiment's {name(study.strategy)} runs;"
            " every other row switches off or replaces one component (its variant name in the ablation sweep).",
            "Δ: difference of means, variant minus full.",
            code_versions(pd.concat([full, abl])),
        ]
        table_name = "ablation" if len(studies) == 1 else f"ablation-{study.strategy}-{study.benchmark}"
        tables.append(
            Table(
                table_name,
                f"{name(study.strategy)} ablations on {study.benchmark}",
                columns,
                rows,
                table_notes,
                pd.DataFrame(numbers),
            )
        )
        notes += study.notes
    return tables, notes


def memory_tables(frame: pd.DataFrame) -> list[Table]:
    """One table per benchmark of the memory runs: final accuracy and bytes per budget and strategy."""
    all_series = memory_series(frame)
    tables = []
    for series in all_series:
        runs, bench = series.runs, series.benchmark
        strategies = strategy_order(runs["strategy"])
        columns = [Column("memory (items)", "Budget")]
        for s in strategies:
            columns += [
                Column(f"{s} final acc", r"Acc.~$\uparrow$", s),
                Column(f"{s} n", "$n$", s),
                Column(f"{s} bytes", "Bytes", s),
            ]
        rows, numbers = [], []
        for size in sorted(int(m) for m in runs["memory"].dropna().unique()):
            row = [size]
            for s in strategies:
                group = runs[(runs["strategy"] == s) & (runs["memory"] == size)]
                a = stat(group["final_accuracy"])
                row += [a, len(group), Bytes(float(group["memory_bytes"].mean())) if len(group) else None]
                if len(group):
                    numbers.append(
                        {
                            "strategy": s,
                            "memory": size,
                            "experiment": ",".join(sorted(set(group["experiment"]))),
                            "n": len(group),
                            "final_accuracy_mean": a.mean,
                            "final_accuracy_std": a.std,
                            "memory_bytes_mean": float(group["memory_bytes"].mean()),
                        }
                    )
            rows.append(row)
        main_sizes = ", ".join(map(str, sorted(series.from_main)))
        table_notes = [
            STD_NOTE
            + f" Final accuracy on {bench} per memory budget (items kept); bytes: mean memory_bytes, 1 MB = 10^6 bytes."
            + (f" Budget {main_sizes}: the main experiment's runs." if series.from_main else ""),
            code_versions(runs),
        ]
        table_name = "memory" if len(all_series) == 1 else f"memory-{bench}"
        tables.append(
            Table(
                table_name,
                f"Final accuracy against memory budget on {bench}",
                columns,
                rows,
                table_notes,
                pd.DataFrame(numbers),
            )
        )
    return tables


def tuning_table(frame: pd.DataFrame) -> Table:
    """Per (experiment, benchmark, strategy), the variant with the highest mean validation final
    accuracy over seeds is chosen; the runs were evaluated on the validation split only."""
    runs = tuning_runs(frame)
    numbers = (
        runs.groupby([*TUNING_BLOCK, "variant"])["final_accuracy"]
        .agg(valid_accuracy_mean="mean", valid_accuracy_std="std", seeds="size")
        .reset_index()
    )
    numbers["chosen"] = numbers["valid_accuracy_mean"] == numbers.groupby(TUNING_BLOCK)[
        "valid_accuracy_mean"
    ].transform("max")
    numbers = numbers.sort_values(
        [*TUNING_BLOCK, "valid_accuracy_mean"], ascending=[True, True, True, False]
    ).reset_index(drop=True)
    columns = [Column(c) for c in (*TUNING_BLOCK, "variant", "validation accuracy", "seeds", "chosen")]
    rows = [
        [
            *(r[c] for c in TUNING_BLOCK),
            r["variant"],
            mean_std(r["valid_accuracy_mean"], r["valid_accuracy_std"]),
            r["seeds"],
            "✔" if r["chosen"] else "",
        ]
        for r in numbers.to_dict("records")
    ]
    title = "Hyperparameter selection on the validation split"
    return Table("tuning", title, columns, rows, [code_versions(runs)], numbers, formats=("md", "csv"), numparse=True)


def nested_tuning_tables(root: Path, log: Callable) -> list[tuple[Path, Table]]:
    """(folder, table) for each nested results directory with tuning runs (results/tuning); a folder
    whose runs cannot be selected from is named in ``log``."""
    found = []
    for sub in nested_results(root):
        try:
            found.append((sub, tuning_table(load_runs(sub).frame)))
        except NoData:
            continue
        except ValueError as err:
            log(f"results page: tuning runs under {sub}: {err}")
    return found
