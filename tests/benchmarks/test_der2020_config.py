"""The committed reproduction: der2020.yaml runs every cell of its published CSV, with the
paper's protocol."""

from __future__ import annotations

import math
from pathlib import Path

from benchmarks.config import load_sweep
from benchmarks.report import reproduction as rep

REPO = Path(__file__).resolve().parents[2]


def test_der2020_runs_every_published_cell():
    """Each row of the committed CSV is run by der2020.yaml: 5 seeds at its buffer, role reproduction.
    Beside them, only EpiNet under the same protocol (experiment der2020-epinet, role memory)."""
    published = rep.load_published("der2020")
    every = load_sweep(REPO / "benchmarks" / "configs" / "der2020.yaml").runs()
    runs = [r for r in every if r.role == "reproduction"]
    others = [r for r in every if r.role != "reproduction"]
    assert {r.experiment for r in runs} == {"der2020"}
    assert {(r.role, r.experiment, r.strategy) for r in others} == {("memory", "der2020-epinet", "epinet")}
    for row in published.itertuples():
        match = [
            r
            for r in runs
            if r.strategy == row.strategy
            and r.benchmark == row.benchmark
            and (math.isnan(row.buffer) or r.memory == row.buffer)
        ]
        assert sorted(r.seed for r in match) == [0, 1, 2, 3, 4], (row.method, row.benchmark, row.buffer)
        assert {(r.optimizer, r.mlp_width, r.init, r.input_scale, r.valid_fraction, r.epochs) for r in match} == {
            ("sgd", 100, "xavier", "unit", 0.0, 1)
        }
        n_exp = 20 if row.benchmark == "permuted-mnist" else None
        assert {r.n_experiences for r in match} == {n_exp} and {r.train_per_experience for r in match} == {None}
