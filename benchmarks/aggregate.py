"""Run records -> tidy pandas frames, and the one mean ± std format of every table: the one place results are
flattened and grouped."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from benchmarks.metrics import seen_accuracy
from benchmarks.scenarios import stream_label

GROUP = ["benchmark", "strategy", "experiment", "variant"]
CONFIG = [*GROUP, "seed", "memory", "epochs", "backbone", "eval_split", "role", "reference"]
PROVENANCE = ["git_commit", "git_dirty"]
METRICS = [
    "final_accuracy",
    "average_forgetting",
    "backward_transfer",
    "learning_accuracy",
    "train_seconds",
    "eval_seconds",
    "peak_rss_bytes",
    "parameter_count",
    "memory_bytes",
]


def runs_frame(records: Iterable[dict]) -> pd.DataFrame:
    """One row per run: identifying config fields, the config hash, every metric, the accuracy matrix and the
    whole config."""
    rows = []
    for record in records:
        config, metrics = record["config"], record["metrics"]
        row = {key: config.get(key) for key in CONFIG}
        row["benchmark"] = stream_label(config.get("benchmark"), config.get("online"))  # online: a stream of its own
        row["config_hash"] = record.get("config_hash")
        row.update({key: record.get(key) for key in PROVENANCE})
        row.update({m: metrics.get(m) for m in METRICS})
        row["accuracy_matrix"] = record.get("accuracy_matrix")
        row["config"] = config  # the whole resolved config, for pages that show each run
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*CONFIG, "config_hash", *PROVENANCE, *METRICS, "accuracy_matrix", "config"])
    return frame.astype({m: float for m in METRICS})


def seen_accuracy_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Long form of metrics.seen_accuracy: one row per run and training experience (1-based)."""
    rows = [
        {**{key: run[key] for key in (*GROUP, "seed", "memory")}, "experience": i, "seen_accuracy": acc}
        for run in frame.to_dict("records")
        for i, acc in enumerate(seen_accuracy(run["accuracy_matrix"]), start=1)
    ]
    return pd.DataFrame(rows, columns=[*GROUP, "seed", "memory", "experience", "seen_accuracy"])


def summary(
    frame: pd.DataFrame, metrics=("final_accuracy", "average_forgetting", "train_seconds"), keys=(*GROUP, "memory")
) -> pd.DataFrame:
    """Mean, std (pandas, ddof=1) and seed count per ``keys`` (default: benchmark, strategy, experiment, variant,
    memory)."""
    keys = list(keys)
    grouped = frame.groupby(keys, dropna=False)[list(metrics)]
    out = grouped.agg(["mean", "std"])
    out.columns = [f"{m}_{stat}" for m, stat in out.columns]
    out["seeds"] = grouped.size()
    return out.reset_index()


def mean_matrices(runs: pd.DataFrame, log: Callable = print) -> dict[tuple[str, str], tuple[np.ndarray, int]]:
    """(benchmark, strategy) -> (mean accuracy matrix over seeds, seeds); runs of another shape are left out."""
    out = {}
    for (bench, strategy), group in runs.groupby(["benchmark", "strategy"]):
        mats = [np.asarray(m, float) for m in group["accuracy_matrix"]]
        shapes = pd.Series([m.shape for m in mats])
        shape = shapes.mode().iloc[0]
        if (shapes != shape).any():
            log(
                f"{strategy} on {bench}: left out {int((shapes != shape).sum())} runs"
                f" whose matrix is not {shape[0]}x{shape[1]}"
            )
        kept = [m for m in mats if m.shape == shape]
        out[bench, strategy] = (np.mean(kept, axis=0), len(kept))
    return out


def mean_std(mean: float, std: float | None = None, *, pm: str = " ± ", signed: bool = False, digits: int = 3) -> str:
    """``0.810 ± 0.010`` (``pm`` joins them: `` $\\pm$ `` in LaTeX): the one mean ± std format of
    every table. The std is left out where it is undefined (one seed): never a false ± 0.000."""
    text = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    if std is not None and math.isfinite(std):
        text += f"{pm}{std:.{digits}f}"
    return text


def format_summary(table: pd.DataFrame) -> str:
    """A compact terminal table: mean ± std (n seeds)."""
    if table.empty:
        return "(no results)"
    shown = table[[*GROUP, "memory"]].copy()
    for metric in ("final_accuracy", "average_forgetting"):
        mean, std = table[f"{metric}_mean"], table[f"{metric}_std"]
        shown[metric] = ["—" if pd.isna(m) else mean_std(m, s) for m, s in zip(mean, std)]
    shown["train_s"] = table["train_seconds_mean"].round(1)
    shown["seeds"] = table["seeds"]
    return shown.to_string(index=False)
