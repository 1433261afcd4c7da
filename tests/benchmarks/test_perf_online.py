"""``perf``'s (h): the online protocol at batch 10 against a plain loop. Its rows and verdict on
hand-made timings, and a tiny real measurement whose harness side is the runner's own online
path (one ``train`` call per mini-experience). The timings themselves are not tested."""

from __future__ import annotations

import pytest

import benchmarks.online
from benchmarks.perf.online import OnlineVsPlain, measure_online
from benchmarks.perf.timing import Timing
from benchmarks.streams import build_benchmark


def test_ratio_is_per_sample_and_judged_against_2x():
    met = OnlineVsPlain(3000, 10, "adam", harness=Timing([3.0]), plain=Timing([2.0]))
    (row,) = met.rows()
    assert row.result == "1000 µs / 667 µs = 1.50x" and row.target == "≤ 2.00x" and row.verdict == "pass"
    missed = OnlineVsPlain(3000, 10, "adam", harness=Timing([4.2]), plain=Timing([2.0]))
    assert missed.rows()[0].verdict == "**FAIL**"
    data = met.to_json()
    assert data["seconds_per_sample"] == {"harness": pytest.approx(0.001), "plain": pytest.approx(2 / 3000)}
    assert data["ratio_harness_plain"] == pytest.approx(1.5)


def test_harness_side_trains_one_mini_experience_per_call(synthetic_mnist, monkeypatch):
    bench = build_benchmark("split-mnist", synthetic_mnist, seed=0)
    calls = []
    real = benchmarks.online.train_online

    def counting(strategy, stream):
        calls.append([len(m) for m in stream])
        yield from real(strategy, stream)

    monkeypatch.setattr(benchmarks.online, "train_online", counting)
    out = measure_online(bench, repeats=1, samples=35)
    assert out.samples == 35 and out.batch_size == 10
    assert calls == [[10, 10, 10, 5]] * 2  # one warm-up round, one timed
    assert len(out.harness.samples) == len(out.plain.samples) == 1
