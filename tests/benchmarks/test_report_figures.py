"""Figures of ``epinet-bench report``: every file is written (PNG and PDF, non-empty), and a figure
without data is skipped with a message instead of failing the report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.aggregate import runs_frame, seen_accuracy_frame
from benchmarks.metrics import seen_accuracy
from benchmarks.report import report
from tests.benchmarks.run_records import (
    MAIN,
    N_EXP,
    make_record,
    write_dataset,
    write_record,
)

REPO = Path(__file__).resolve().parents[2]
STEMS = [
    "seen_accuracy",
    "accuracy_matrix_split-mnist",
    "accuracy_matrix_permuted-mnist",
    "forgetting",
    "ablation",
    "memory",
]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    results = write_dataset(tmp_path_factory.mktemp("figures"), strategies=("naive", "replay", "epinet", "joint"))
    out, log = [], []
    status = report(results, out=out.append, log=log.append)
    return results, status, out, log


def test_every_figure_is_written_as_png_and_pdf(rendered):
    results, status, out, log = rendered
    assert status == 0
    assert not [line for line in log if line.startswith(("could not render", "skipped figures"))], log
    figures = results / "figures"
    assert sorted(p.name for p in figures.iterdir()) == sorted(
        f"{stem}.{ext}" for stem in STEMS for ext in ("png", "pdf")
    )
    for stem in STEMS:
        png, pdf = (figures / f"{stem}.png").read_bytes(), (figures / f"{stem}.pdf").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000, stem
        assert pdf.startswith(b"%PDF") and len(pdf) > 3000, stem
    assert any("seen_accuracy.{png,pdf}" in line for line in out)


def test_importing_the_figures_module_selects_agg():
    # A fresh interpreter told to use another backend: in this one a report may already have
    # selected Agg, and without a display matplotlib may fall back to Agg on its own.
    code = "import matplotlib; import benchmarks.report.figures; print(matplotlib.get_backend())"
    env = {
        **os.environ,
        "MPLBACKEND": "svg",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().lower() == "agg"


def test_seen_accuracy_frame_follows_metrics():
    records = [
        make_record("split-mnist", "epinet", seed, acc, forg)
        for seed, (acc, forg) in enumerate(zip(*MAIN["split-mnist", "epinet"]))
    ]
    long = seen_accuracy_frame(runs_frame(records))
    assert len(long) == 3 * N_EXP and list(long["experience"].unique()) == list(range(1, N_EXP + 1))
    for seed, record in enumerate(records):
        got = long.loc[long["seed"] == seed, "seen_accuracy"].to_numpy()
        np.testing.assert_allclose(got, seen_accuracy(record["accuracy_matrix"]))
        assert got[-1] == pytest.approx(record["metrics"]["final_accuracy"])  # the last point is the final accuracy


def test_figures_without_data_are_skipped_with_a_message(tmp_path):
    write_record(
        tmp_path, make_record("split-mnist", "joint", 0, 0.95)
    )  # joint only: no forgetting, no ablation, no memory runs
    out, log = [], []
    assert report(tmp_path, out=out.append, log=log.append) == 0
    assert "skipped figures/forgetting: no runs with a defined forgetting (joint has none)" in log
    assert "skipped figures/ablation: no ablation runs (role: ablation)" in log
    assert "skipped figures/memory: no memory runs (role: memory)" in log
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "accuracy_matrix_split-mnist.pdf",
        "accuracy_matrix_split-mnist.png",
        "seen_accuracy.pdf",
        "seen_accuracy.png",
    ]


def test_every_listed_strategy_has_its_own_colour_whatever_else_is_plotted():
    from benchmarks.report.figures import palette
    from benchmarks.report.order import STRATEGY_ORDER

    everything = palette(STRATEGY_ORDER)
    assert len(set(everything[s] for s in STRATEGY_ORDER)) == len(STRATEGY_ORDER)
    assert palette(["der", "epinet"])["der"] == everything["der"]  # not shifted by who else is plotted
    assert palette(["zz-new"])["zz-new"] not in [everything[s] for s in ("naive", "ewc", "replay", "epinet", "joint")]
