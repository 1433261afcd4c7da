"""``epinet-bench determinism``: does the same seed give the same number?

Runs a sweep config's grid several times, in fresh worker processes, at each of several torch
thread counts (each repetition into its own results directory), then compares final accuracy
per (benchmark, strategy, seed):

* repeat spread: the largest difference between repetitions at the same thread count (0 means
  bit-for-bit deterministic on this machine);
* thread shift: the largest and mean difference between thread counts.

Writes ``<out>/determinism.json`` and ``<out>/determinism.md`` and, with ``--update-readme FILE``,
the ``determinism-table`` block of FILE (results/README.md). Repetitions resume like any sweep,
so an interrupted measurement continues where it stopped.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd

from benchmarks.aggregate import runs_frame
from benchmarks.config import load_sweep
from benchmarks.provenance import code_version, cpu_model
from benchmarks.report.stats import code_versions
from benchmarks.sweep import LocalPool, sweep

KEY = ["benchmark", "strategy", "seed"]


def measure(
    config_path: Path, work: Path, threads: list[int], repeats: int, jobs: int, data_root: str, log, warn
) -> pd.DataFrame:
    """One row per run: KEY, threads, repeat, final_accuracy."""
    configs = load_sweep(config_path).runs(data_root=data_root)
    frames = []
    for n_threads, repeat in itertools.product(threads, range(1, repeats + 1)):
        log(f"determinism: {n_threads} thread(s), repetition {repeat} of {repeats}")
        done = sweep(configs, work / f"threads{n_threads}-rep{repeat}", LocalPool(jobs=jobs, threads_per_job=n_threads),
                     progress=False, log=log, warn=warn).done  # fmt: skip
        frame = runs_frame(done)[[*KEY, "final_accuracy", "git_commit", "git_dirty"]]
        frames.append(frame.assign(threads=n_threads, repeat=repeat))
    return pd.concat(frames, ignore_index=True)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (benchmark, strategy): repeat spread and thread shift over seeds (in accuracy points of 1)."""
    per_seed = runs.groupby([*KEY, "threads"])["final_accuracy"]
    spread = (per_seed.max() - per_seed.min()).groupby(["benchmark", "strategy"]).max().rename("repeat_spread_max")
    first = runs[runs["repeat"] == 1].pivot_table(index=KEY, columns="threads", values="final_accuracy")
    shift = (first.max(axis=1) - first.min(axis=1)).groupby(["benchmark", "strategy"])
    table = pd.concat(
        [spread, shift.max().rename("thread_shift_max"), shift.mean().rename("thread_shift_mean")], axis=1
    )
    table["seeds"] = runs.groupby(["benchmark", "strategy"])["seed"].nunique()
    return table.reset_index()


def markdown(table: pd.DataFrame, runs: pd.DataFrame, threads: list[int], repeats: int) -> str:
    shown = table.copy()
    for column in ("repeat_spread_max", "thread_shift_max", "thread_shift_mean"):
        shown[column] = shown[column].map(lambda v: f"{v:.4f}")
    shown.columns = ["benchmark", "strategy", "same threads, max spread over repeats",
                     f"{' vs '.join(map(str, threads))} threads, max |Δ|", "mean |Δ|", "seeds"]  # fmt: skip
    return (
        shown.to_markdown(index=False)
        + f"\n\nFinal accuracy of the same seed run {repeats}x at each of {', '.join(map(str, threads))} torch threads,"
        " each run in a fresh process; |Δ| is the largest difference between thread counts per seed"
        f" (max and mean over seeds). CPU: {cpu_model()}. {code_versions(runs)}\n"
    )


def run_determinism(
    config_path: Path, out: Path, threads: list[int], repeats: int, jobs: int, data_root: str, log, warn
) -> str:
    if repeats < 1 or not threads or min(threads) < 1:
        raise ValueError("--repeats and every --threads value must be at least 1")
    runs = measure(config_path, out / "determinism-runs", threads, repeats, jobs, data_root, log, warn)
    table = summarise(runs)
    text = markdown(table, runs, threads, repeats)
    out.mkdir(parents=True, exist_ok=True)
    (out / "determinism.md").write_text(text)
    payload = {"config": str(config_path), "threads": threads, "repeats": repeats, "cpu": cpu_model(),
               "code_version": code_version(), "summary": table.to_dict("records"),
               "runs": runs.to_dict("records")}  # fmt: skip
    (out / "determinism.json").write_text(json.dumps(payload, indent=1) + "\n")
    return text
