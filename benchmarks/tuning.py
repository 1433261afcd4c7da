"""Hyperparameter selection from validation runs (experiments named ``tune*``).

The rule is the same for every block: per (experiment, benchmark, strategy), the variant
with the highest mean validation final accuracy over seeds is chosen. Runs evaluated on the
test split are refused here, so the selection cannot look at test data.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

BLOCK = ["experiment", "benchmark", "strategy"]


class NoTuningRuns(Exception):
    pass


def selection_table(frame: pd.DataFrame) -> pd.DataFrame:
    runs = frame[frame["experiment"].astype(str).str.startswith("tune")]
    if runs.empty:
        raise NoTuningRuns("no tuning runs (experiments named tune*)")
    if "eval_split" in runs and (runs["eval_split"] != "valid").any():
        raise ValueError("tuning runs must be evaluated on the validation split (eval_split: valid)")
    table = (
        runs.groupby([*BLOCK, "variant"])["final_accuracy"]
        .agg(valid_accuracy_mean="mean", valid_accuracy_std="std", seeds="size")
        .reset_index()
    )
    best = table.groupby(BLOCK)["valid_accuracy_mean"].transform("max")
    table["chosen"] = table["valid_accuracy_mean"] == best
    return table.sort_values([*BLOCK, "valid_accuracy_mean"], ascending=[True, True, True, False]).reset_index(drop=True)


def markdown(table: pd.DataFrame) -> str:
    shown = table[[*BLOCK, "variant"]].copy()
    shown["validation accuracy"] = [
        f"{m:.3f} ± {s:.3f}" if pd.notna(s) else f"{m:.3f}" for m, s in zip(table["valid_accuracy_mean"], table["valid_accuracy_std"])
    ]
    shown["seeds"] = table["seeds"]
    shown["chosen"] = table["chosen"].map({True: "✔", False: ""})
    return shown.to_markdown(index=False)


def write(table: pd.DataFrame, tables_dir: Path) -> list[Path]:
    tables_dir.mkdir(parents=True, exist_ok=True)
    md, csv = tables_dir / "tuning.md", tables_dir / "tuning.csv"
    md.write_text(markdown(table) + "\n")
    table.to_csv(csv, index=False)
    return [md, csv]
