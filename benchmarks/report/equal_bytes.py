"""The comparison at equal bytes: the method against every other strategy given at least as
many bytes of memory as the method holds.

Methods store different things per item (EpiNet its responses and clock, DER its logits), so
equal item counts are not equal memory. On each benchmark, among the main- and memory-role
runs, each other strategy is taken at its smallest budget whose mean ``memory_bytes`` is at
least the method's at the method's main budget; the method's final accuracy is tested
against it (Welch). Strategies never run with that many bytes are left out.
"""

from __future__ import annotations

import math

import pandas as pd

from benchmarks.report.order import METHOD, benchmark_order, name, strategy_order
from benchmarks.report.selection import NoData
from benchmarks.report.stats import Stat, code_versions, stars, stat, welch
from benchmarks.report.tables import Column, Table
from benchmarks.units import human_bytes


def equal_bytes_table(frame: pd.DataFrame) -> Table:
    """One row per benchmark and other strategy: both at (at least) the method's bytes."""
    rows, numbers, used = [], [], []
    pool = frame[frame["role"].isin(["main", "memory"])]
    for bench in benchmark_order(pool["benchmark"]):
        runs = pool[pool["benchmark"] == bench]
        method_main = runs[(runs["strategy"] == METHOD) & (runs["role"] == "main")]
        if method_main.empty:
            continue
        method_bytes = float(method_main["memory_bytes"].mean())
        method_acc = stat(method_main["final_accuracy"])
        for other in strategy_order(runs["strategy"]):
            if other == METHOD:
                continue
            budgets = runs[runs["strategy"] == other].groupby("memory")["memory_bytes"].mean()
            enough = budgets[budgets >= method_bytes]
            if enough.empty:
                continue  # never given the method's bytes: nothing to compare at equal bytes
            size = int(enough.index.min())
            group = runs[(runs["strategy"] == other) & (runs["memory"] == size)]
            acc = stat(group["final_accuracy"])
            _, _, p = welch(method_main["final_accuracy"], group["final_accuracy"])
            delta = method_acc.mean - acc.mean
            rows.append(
                [
                    bench,
                    name(other),
                    size,
                    human_bytes(float(group["memory_bytes"].mean())),
                    acc,
                    Stat(delta, signed=True, mark=stars(p)),
                    f"{p:.2g}" if math.isfinite(p) else "—",
                ]
            )
            numbers.append(
                {
                    "benchmark": bench,
                    "strategy": other,
                    "memory": size,
                    "memory_bytes_mean": float(group["memory_bytes"].mean()),
                    "n": len(group),
                    "final_accuracy_mean": acc.mean,
                    "final_accuracy_std": acc.std,
                    f"{METHOD}_memory": int(method_main["memory"].iloc[0]),
                    f"{METHOD}_memory_bytes_mean": method_bytes,
                    f"{METHOD}_final_accuracy_mean": method_acc.mean,
                    f"{METHOD}_final_accuracy_std": method_acc.std,
                    f"{METHOD}_n": method_acc.n,
                    "delta": delta,
                    "welch_p": p,
                }
            )
            used += [method_main, group]
    if not rows:
        raise NoData(f"no strategy was run at {METHOD}'s memory bytes (role: memory)")
    columns = [
        Column("benchmark", "Benchmark"),
        Column("strategy", "Strategy"),
        Column("memory (items)", "Items"),
        Column("bytes", "Bytes"),
        Column("final acc", r"Acc.~$\uparrow$"),
        Column(f"{name(METHOD)} − it", r"$\Delta$"),
        Column("Welch p", "$p$"),
    ]
    method_rows = pd.DataFrame(numbers)
    notes = [
        f"Each strategy at its smallest memory budget holding at least {name(METHOD)}'s bytes at"
        f" {name(METHOD)}'s main budget ({_method_summary(method_rows)}); {name(METHOD)} − it: the"
        " difference in mean final accuracy, with Welch's two-sided p (* p < 0.05, ** p < 0.01)."
        " Mean ± sample standard deviation over seeds; 1 MB = 10^6 bytes.",
        code_versions(pd.concat(used, ignore_index=True)),
    ]
    return Table(
        "equal-bytes", f"{name(METHOD)} against each strategy at equal memory bytes", columns, rows, notes, method_rows
    )


def _method_summary(numbers: pd.DataFrame) -> str:
    """``split-mnist 0.930 ± 0.005 with 1.6 MB; ...``: the method's side of each benchmark."""
    parts = []
    for bench, group in numbers.groupby("benchmark", sort=False):
        first = group.iloc[0]
        std = first[f"{METHOD}_final_accuracy_std"]
        spread = f" ± {std:.3f}" if math.isfinite(std) else ""
        parts.append(
            f"{bench}: {first[f'{METHOD}_final_accuracy_mean']:.3f}{spread}"
            f" with {human_bytes(first[f'{METHOD}_memory_bytes_mean'])}"
        )
    return "; ".join(parts)
