"""One diagnosed EpiNet run: train on the validation protocol with :class:`DiagnosticsPlugin`,
then write its tables, summary and figure.

Written to ``<out>/<name>/`` (``name``: ``<benchmark>-<variant>-seed<N>``, the config hash
standing in for an unnamed variant):

* ``records.csv``      one row per recorded iteration: losses, replay share, recall on the
                        training batch, salience and age quantiles in memory;
* ``composition.csv``  per recorded iteration, items in memory per class and per experience of
                        origin (``by``, ``group``, ``count``; groups with no item are left out);
* ``ends.csv``         per experience end, stage and probed experience: accuracy, recall
                        statistics and, after re-encoding, the shift of r and of predictions;
* ``reencodings.csv``  per end-of-experience re-encoding: how far the stored latents moved;
* ``summary.json``     the configuration, the harness's accuracy matrix and the key numbers;
* ``overview.png``     the figure (``benchmarks.diagnostics.figures``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.config import RunConfig
from benchmarks.data import MNIST
from benchmarks.diagnostics.probe import REENCODING_COLUMNS, STAGES, DiagnosticsPlugin
from benchmarks.provenance import code_version
from benchmarks.runner import run
from benchmarks.streams import Benchmark

TABLES = ("records", "composition", "ends", "reencodings")


def check_diagnosable(config: RunConfig) -> None:
    """Diagnostics read EpiNet's internals and are for choosing what to change: validation only."""
    if config.strategy != "epinet":
        raise ValueError(f"diagnose runs EpiNet only (got strategy {config.strategy!r})")
    if config.eval_split != "valid":
        raise ValueError("diagnose evaluates on the validation split only (eval_split 'valid'), never on test")


def run_name(config: RunConfig) -> str:
    variant = config.config_hash() if config.variant == "default" else config.variant
    return f"{config.benchmark}-{variant}-seed{config.seed}"


@dataclass
class Diagnosis:
    config: RunConfig
    record: dict[str, Any]  # the harness's run record (accuracy matrix on validation, metrics)
    records: pd.DataFrame
    composition: pd.DataFrame
    ends: pd.DataFrame
    reencodings: pd.DataFrame
    every: int
    probe_size: int

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in TABLES}


def diagnose(
    config: RunConfig, *, every: int, probe_size: int, data: MNIST | None = None, progress: bool = False
) -> Diagnosis:
    """Run ``config`` through the harness's runner with a :class:`DiagnosticsPlugin` whose
    probes are the first ``probe_size`` validation samples of each experience."""
    check_diagnosable(config)
    if probe_size < 1:
        raise ValueError(f"probe size must be at least 1 (got {probe_size})")
    plugins: list[DiagnosticsPlugin] = []

    def diagnostics_plugin(bench: Benchmark) -> list[DiagnosticsPlugin]:
        probes = [tuple(part[:probe_size] for part in exp.tensors) for exp in bench.valid_stream]
        plugins.append(DiagnosticsPlugin(probes, every, config.eval_batch_size))
        return plugins[-1:]

    record = run(config, data=data, progress=progress, extra_plugins=diagnostics_plugin)
    plugin = plugins[0]
    columns = {"reencodings": list(REENCODING_COLUMNS)}  # the table that can be empty keeps its header
    tables = {name: pd.DataFrame(getattr(plugin, name), columns=columns.get(name)) for name in TABLES}
    return Diagnosis(config, record, **tables, every=every, probe_size=probe_size)


def summarise(d: Diagnosis) -> dict[str, Any]:
    """The key numbers: per experience end, accuracy on the experience just trained (and the
    mean over those seen) at each stage, and what re-encoding moved; the replay term's mean
    share of the loss per experience; memory's composition at the last record."""
    ends = d.ends
    own = ends[ends["probe_experience"] == ends["experience"]]
    per_end = own.pivot(index="experience", columns="stage", values="accuracy")
    seen = ends.groupby(["experience", "stage"])["accuracy"].mean().unstack()
    stages = [stage for stage in STAGES if stage in per_end.columns]  # in the order they happen
    table = per_end[stages].add_prefix("accuracy_").join(seen[stages].add_prefix("seen_accuracy_"))
    after = ends[ends["stage"] == "after_reencode"]
    if not after.empty:
        shift = ["r_shift_cos", "r_shift_rel", "prediction_flips"]
        own_at = {stage: own[own["stage"] == stage].set_index("experience") for stage in STAGES}
        table = table.join(after.groupby("experience")[shift].mean().add_suffix("_seen")).join(
            [
                own_at["after_reencode"][shift],
                own_at["before_reencode"]["r_norm"].rename("r_norm_before"),
                own_at["after_reencode"]["r_norm"].rename("r_norm_after"),
                own_at["after_reencode"]["z_norm"],
            ]
        )
    if not d.reencodings.empty:
        stored = ["stored_z_cos", "stored_z_norm_before", "stored_z_norm_after"]
        table = table.join(d.reencodings.set_index("experience")[stored])
    last = d.composition[d.composition["iteration"] == d.composition["iteration"].max()]
    return {
        "run": run_name(d.config),
        "config": d.config.model_dump(exclude={"data_root"}),
        "every": d.every,
        "probe_size": d.probe_size,
        "code_version": code_version(),
        "accuracy_matrix": [[round(a, 4) for a in row] for row in d.record["accuracy_matrix"]],
        "final_accuracy": d.record["metrics"]["final_accuracy"],
        "experience_ends": table.reset_index().round(4).to_dict("records"),
        "replay_share_by_experience": d.records.groupby("experience")["replay_share"].mean().round(4).to_dict(),
        "final_composition": {
            by: dict(zip(group["group"].tolist(), group["count"].tolist())) for by, group in last.groupby("by")
        },
    }


def describe(summary: dict[str, Any]) -> str:
    """The summary's key numbers as lines of text (experiences numbered from 1)."""
    lines = ["accuracy matrix on validation (row i: after training experience i):"]
    lines += ["  " + " ".join(f"{a:.3f}" for a in row) for row in summary["accuracy_matrix"]]
    lines.append("at each experience end, accuracy on the experience just trained (validation probe):")
    for end in summary["experience_ends"]:
        stages = [f"{k.removeprefix('accuracy_')} {v:.3f}" for k, v in end.items() if k.startswith("accuracy_")]
        lines.append(f"  experience {end['experience'] + 1}: {', '.join(stages)}")
    origins = {e + 1: n for e, n in summary["final_composition"].get("origin", {}).items()}
    lines.append(f"memory at the end, items per experience of origin: {origins}")
    return "\n".join(lines)


def write(d: Diagnosis, out_dir: Path, figures: bool = True) -> Path:
    """Write the tables, ``summary.json`` and (unless ``figures`` is False) ``overview.png``
    into ``out_dir/<run name>/``; returns that directory."""
    out = Path(out_dir) / run_name(d.config)
    out.mkdir(parents=True, exist_ok=True)
    for name, table in d.tables().items():
        table.to_csv(out / f"{name}.csv", index=False, float_format="%.4g")  # 4 digits: small files
    (out / "summary.json").write_text(json.dumps(summarise(d), indent=1, default=str) + "\n")
    if figures:
        from benchmarks.diagnostics.figures import overview

        overview(d, out / "overview.png")
    return out
