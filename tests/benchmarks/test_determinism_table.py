"""``epinet-bench determinism``: the spread and shift it reports, computed by hand, and the
results page's block equal to the committed measurement."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks.determinism import summarise
from benchmarks.markdown_blocks import read_block

REPO = Path(__file__).resolve().parents[2]


def test_spread_and_shift_by_hand():
    rows = [
        # benchmark, strategy, seed, threads, repeat, final accuracy
        ("split-mnist", "epinet", 0, 1, 1, 0.80), ("split-mnist", "epinet", 0, 1, 2, 0.80),
        ("split-mnist", "epinet", 0, 2, 1, 0.70), ("split-mnist", "epinet", 0, 2, 2, 0.72),
        ("split-mnist", "epinet", 1, 1, 1, 0.90), ("split-mnist", "epinet", 1, 1, 2, 0.90),
        ("split-mnist", "epinet", 1, 2, 1, 0.86), ("split-mnist", "epinet", 1, 2, 2, 0.86),
        ("split-mnist", "naive", 0, 1, 1, 0.19), ("split-mnist", "naive", 0, 1, 2, 0.19),
        ("split-mnist", "naive", 0, 2, 1, 0.19), ("split-mnist", "naive", 0, 2, 2, 0.19),
    ]  # fmt: skip
    runs = pd.DataFrame(rows, columns=["benchmark", "strategy", "seed", "threads", "repeat", "final_accuracy"])
    table = summarise(runs).set_index("strategy")
    # repeats at equal threads: epinet differs only at seed 0 with 2 threads (0.70 vs 0.72)
    assert table.loc["epinet", "repeat_spread_max"] == pytest.approx(0.02)
    # first repetitions, 1 vs 2 threads: |0.80 - 0.70| = 0.10 at seed 0, |0.90 - 0.86| = 0.04 at seed 1
    assert table.loc["epinet", "thread_shift_max"] == pytest.approx(0.10)
    assert table.loc["epinet", "thread_shift_mean"] == pytest.approx(0.07)
    assert table.loc["naive", ["repeat_spread_max", "thread_shift_max"]].tolist() == [0.0, 0.0]
    assert table.loc["epinet", "seeds"] == 2


def test_readme_block_is_the_committed_measurement():
    measured = REPO / "results" / "determinism.md"
    if not measured.exists():
        pytest.fail(
            "results/determinism.md is missing: run `epinet-bench determinism ... --update-readme results/README.md`"
        )
    assert read_block(REPO / "results" / "README.md", "determinism-table") == measured.read_text().strip("\n")
