"""Which runs each table and figure shows: loading the run JSONs and sorting them by role.

A run's role (``benchmarks.roles``) and the reference strategy of the significance tests come
from its config, as the sweep declared them. Runs stored before these fields existed (the
committed ``results/runs`` and ``results/tuning``) have neither: such a run takes the role
named like its experiment (``roles.role_named_like``) and the reference ``replay``, which is
what the report hard-coded when they were written. A run of ``epinet-bench run`` (experiment
``adhoc``, no role) is shown only where there are no main-role runs at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.aggregate import runs_frame
from benchmarks.report.order import benchmark_order, strategy_order
from benchmarks.roles import role_named_like
from benchmarks.store import CorruptResult, iter_results

LEGACY_REFERENCE = "replay"  # the reference of runs stored before sweeps declared one


class NoData(Exception):
    """A table or figure has nothing to show; the message says what is missing."""


@dataclass
class Runs:
    frame: pd.DataFrame  # benchmarks.aggregate.runs_frame; experiment, variant and role filled in
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
                problems.append(
                    f"skipped {path}: accuracy matrix has {len(matrix)} rows for {len(matrix[0])} experiences"
                )
            else:
                records.append(record)
    except OSError as err:
        problems.append(f"could not read all of {root}: {err}")
    if files == 0:
        problems.append(f"no run files (runs/<benchmark>/<strategy>/<hash>/seed<N>.json) under {root}")
    frame = runs_frame(records)
    # stored before roles were recorded (see the module's note); the config column keeps the file's config
    legacy = np.array(["role" not in record["config"] for record in records], dtype=bool)
    frame.loc[legacy, "reference"] = LEGACY_REFERENCE
    frame["experiment"] = frame["experiment"].fillna("adhoc")
    frame["variant"] = frame["variant"].fillna("default")
    undeclared = frame["role"].isna()
    frame.loc[undeclared, "role"] = [
        "adhoc" if e == "adhoc" else role_named_like(e) for e in frame.loc[undeclared, "experiment"]
    ]
    return Runs(frame, problems, files)


def nested_results(root: str | Path) -> list[Path]:
    """Results directories inside ``root`` (``results/tuning``): folders with their own ``runs/``."""
    root = Path(root)
    return sorted(d for d in root.iterdir() if d.is_dir() and (d / "runs").is_dir()) if root.is_dir() else []


def upper_bounds(runs: pd.DataFrame) -> set[str]:
    """Strategies that train once on everything (joint): one row in every accuracy matrix."""
    found = {"joint"} & set(runs["strategy"])
    for strategy, group in runs.groupby("strategy"):
        if len(group) and all(len(m) == 1 for m in group["accuracy_matrix"]):
            found.add(strategy)
    return found


def main_runs(frame: pd.DataFrame, allow_adhoc: bool = True) -> tuple[pd.DataFrame, str | None]:
    """The main-role runs; without any, ad-hoc ``epinet-bench run`` runs (with a note saying so)."""
    main = frame[frame["role"] == "main"]
    if not main.empty or not allow_adhoc:
        return main, None
    adhoc = frame[frame["role"] == "adhoc"]
    if adhoc.empty:
        return adhoc, None
    return adhoc, f"no main-role runs: the main table and figures show the {len(adhoc)} ad-hoc runs (epinet-bench run)"


def reference_of(runs: pd.DataFrame) -> tuple[str | None, list[str]]:
    """The strategy the runs' sweep declared as the significance reference (None: no tests)."""
    counts = runs["reference"].dropna().value_counts()
    if counts.empty:
        return None, []
    notes = (
        [f"main: runs declare references {', '.join(counts.index)}; testing against {counts.index[0]}"]
        if len(counts) > 1
        else []
    )
    return counts.index[0], notes


@dataclass
class Ablation:
    strategy: str
    benchmark: str
    full: pd.DataFrame  # the strategy's main-role runs on the benchmark
    variants: pd.DataFrame  # its ablation-role runs there
    notes: list[str]


def ablations(frame: pd.DataFrame) -> list[Ablation]:
    """One ablation study per (strategy, benchmark) that ablation-role runs cover."""
    abl = frame[frame["role"] == "ablation"]
    if abl.empty:
        raise NoData("no ablation runs (role: ablation)")
    studies = []
    for strategy in strategy_order(abl["strategy"]):
        for bench in benchmark_order(abl.loc[abl["strategy"] == strategy, "benchmark"]):
            variants = abl[(abl["strategy"] == strategy) & (abl["benchmark"] == bench)]
            full = frame[(frame["role"] == "main") & (frame["strategy"] == strategy) & (frame["benchmark"] == bench)]
            notes = []
            if full.empty:
                notes.append(f"ablation: no main-role {strategy} run on {bench}, so no differences to full")
            for variant, group in variants.groupby("variant"):
                for key in ("memory", "epochs", "backbone"):
                    if not full.empty and set(group[key].dropna()) != set(full[key].dropna()):
                        notes.append(
                            f"ablation: variant {variant} has {key} {sorted(set(group[key].dropna()))},"
                            f" full has {sorted(set(full[key].dropna()))}"
                        )
            studies.append(Ablation(strategy, bench, full, variants, notes))
    return studies


@dataclass
class MemorySeries:
    benchmark: str
    runs: pd.DataFrame  # memory-role runs, and main-role runs at budgets the memory runs lack
    from_main: set[int]  # the budgets taken from the main-role runs


def memory_series(frame: pd.DataFrame) -> list[MemorySeries]:
    """One series per benchmark that memory-role runs cover."""
    mem = frame[frame["role"] == "memory"]
    if mem.empty:
        raise NoData("no memory runs (role: memory)")
    series = []
    for bench in benchmark_order(mem["benchmark"]):
        here = mem[mem["benchmark"] == bench]
        main = frame[
            (frame["role"] == "main") & (frame["benchmark"] == bench) & frame["strategy"].isin(set(here["strategy"]))
        ]
        # the main runs supply each strategy's default budget unless the memory runs ran it too
        own = np.array(
            [m not in set(here.loc[here["strategy"] == s, "memory"]) for s, m in zip(main["strategy"], main["memory"])],
            dtype=bool,
        )
        main = main.loc[own]
        series.append(
            MemorySeries(bench, pd.concat([here, main], ignore_index=True), set(main["memory"].dropna().astype(int)))
        )
    return series


def tuning_runs(frame: pd.DataFrame) -> pd.DataFrame:
    runs = frame[frame["role"] == "tuning"]
    if runs.empty:
        raise NoData("no tuning runs (role: tuning)")
    if "eval_split" in runs and (runs["eval_split"] != "valid").any():
        # the selection must never see test data
        raise ValueError("tuning runs must be evaluated on the validation split (eval_split: valid)")
    return runs


def pooling_notes(runs: pd.DataFrame, keys: list[str], what: str) -> list[str]:
    """Say where one cell pools runs of different configurations or repeats a seed."""
    notes = []
    for key, group in runs.groupby(keys):
        label = " / ".join(map(str, key if isinstance(key, tuple) else (key,)))
        hashes = sorted(set(group["config_hash"].dropna()))
        if len(hashes) > 1:
            notes.append(f"{what}: {label} pools {len(hashes)} different configurations ({', '.join(hashes)})")
        if group["seed"].duplicated().any():
            notes.append(
                f"{what}: {label} has seed(s) {sorted(set(group.loc[group['seed'].duplicated(), 'seed']))}"
                " more than once"
            )
    return notes
