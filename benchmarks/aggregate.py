"""Run records -> tidy pandas frames; the one place results are flattened and grouped."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

GROUP = ["benchmark", "strategy", "experiment", "variant"]
METRICS = ["final_accuracy", "average_forgetting", "backward_transfer", "learning_accuracy", "train_seconds", "eval_seconds", "peak_rss_bytes", "parameter_count", "memory_bytes"]


def runs_frame(records: Iterable[dict]) -> pd.DataFrame:
    """One row per run: identifying config fields, the config hash and every metric."""
    rows = []
    for record in records:
        config, metrics = record["config"], record["metrics"]
        row = {key: config.get(key) for key in (*GROUP, "seed", "memory", "epochs", "backbone")}
        row["config_hash"] = record.get("config_hash")
        row.update({m: metrics.get(m) for m in METRICS})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*GROUP, "seed", "memory", "epochs", "backbone", "config_hash", *METRICS])
    return frame.astype({m: float for m in METRICS})


def summary(frame: pd.DataFrame, metrics=("final_accuracy", "average_forgetting", "train_seconds")) -> pd.DataFrame:
    """Mean, std and seed count per (benchmark, strategy, experiment, variant, memory)."""
    keys = [*GROUP, "memory"]
    grouped = frame.groupby(keys, dropna=False)[list(metrics)]
    out = grouped.agg(["mean", "std"])
    out.columns = [f"{m}_{stat}" for m, stat in out.columns]
    out["seeds"] = grouped.size()
    return out.reset_index()


def format_summary(table: pd.DataFrame) -> str:
    """A compact terminal table: mean ± std (n seeds)."""
    if table.empty:
        return "(no results)"
    shown = table[[*GROUP, "memory"]].copy()
    for metric in ("final_accuracy", "average_forgetting"):
        mean, std = table[f"{metric}_mean"], table[f"{metric}_std"].fillna(0.0)
        shown[metric] = [("—" if pd.isna(m) else f"{m:.3f} ± {s:.3f}") for m, s in zip(mean, std)]
    shown["train_s"] = table["train_seconds_mean"].round(1)
    shown["seeds"] = table["seeds"]
    return shown.to_string(index=False)
