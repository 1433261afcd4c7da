"""``epinet-bench perf``'s plumbing: each measurement's rows and verdicts (on hand-made
measurement objects), the report's Markdown and JSON, the CLI, and small real measurements
(recall latency; EpiNet's bare step, which must be the model's own ``observe``). The
timings themselves are not tested."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks.cli import build_parser
from benchmarks.perf.admission import AdmissionCost
from benchmarks.perf.command import write_results
from benchmarks.perf.harness import HarnessVsPlain
from benchmarks.perf.per_experience import EpiNetVsReplay
from benchmarks.perf.ray_overhead import RayOverhead
from benchmarks.perf.recall import IndexedMemory, IndexedRecall, RecallLatency, measure_recall, measure_recall_index
from benchmarks.perf.report import PerfReport
from benchmarks.perf.steps import measure_bare_steps
from benchmarks.perf.sweep import QuickSweep, SweepRuns, sweep_runs
from benchmarks.perf.timing import Timing
from benchmarks.perf.tracking_cost import NONE, PARTS, TrackingCost, measure_tracking


def timing(median: float) -> Timing:
    return Timing([median])


def fake_tracking(in_calls: float = 0.004, background: float = 0.0) -> TrackingCost:
    """csv and mlflow against 1 s of untracked training: mlflow spends ``in_calls`` in its calls."""
    parts = dict.fromkeys(PARTS, 0.0) | {"train": 1.0, "train_cpu": 0.5}
    sides = {
        NONE: parts,
        "csv": parts | {"in_calls": 0.0001, "train": 1.2},  # a noisy side-by-side ratio: not the verdict
        "mlflow": parts
        | {"open": 0.02, "first_calls": 0.003, "close": 0.005, "in_calls": in_calls}
        | {"background_cpu": background},
    }
    return TrackingCost(
        iterations=90,
        loss_every=50,
        sides={side: {p: timing(v) for p, v in values.items()} for side, values in sides.items()},
        first_open={"csv": 0.01, "mlflow": 1.6},
        skipped={"wandb": "skipped: needs the wandb package, which is not installed: pip install epinet-bench[wandb]"},
    )


def fake_report(harness=1.05, epinet=1.2, recall_100k=0.015, quick=250.0, tracking=None) -> PerfReport:
    recall_rows = {
        1: {100: timing(1e-4), 100_000: timing(recall_100k)},
        2: {100: timing(1e-4), 100_000: timing(recall_100k / 2)},
    }
    return PerfReport(
        created="2025-01-01T00:00:00+00:00",
        machine={"cpu": "Test CPU", "cores": 2, "platform": "Linux", "usable_cores": 2, "torch_threads": 1},
        versions={"python": "3.11", "torch": "2.x", "avalanche-lib": "0.6"},
        code={"git_commit": None, "dirty": None},
        repeats=3,
        threads=1,
        load_before=[0.1, 0.1, 0.1],
        load_after=[0.2, 0.2, 0.2],
        measurements=[
            HarnessVsPlain(
                11399, 90, 128, "adam", harness=timing(harness), plain=timing(1.0), stock_avalanche=timing(1.5)
            ),
            EpiNetVsReplay(500, "mlp", 128, 50, epinet=timing(epinet), replay=timing(1.0)),
            RecallLatency(128, 128, 5, 20, threads=1, by_threads=recall_rows, matmul_only_by_threads={}),
            AdmissionCost(
                128,
                50,
                admit={500: timing(1e-3)},
                admit_class_balanced={},
                store={500: timing(2e-3)},
                epinet_iteration_ms=20.0,
            ),
            QuickSweep(
                "quick.yaml", 2, 0, quick, 950 * 2**20, SweepRuns({"a": 900 * 2**20}, {"a": 100.0}, {"a": 10.0})
            ),
            tracking or fake_tracking(),
        ],
    )


def verdicts(report: PerfReport) -> dict[str, str]:
    return {
        r.measurement[:3]: r.verdict for r in report.rows() if r.verdict != "—" and "--log csv" not in r.measurement
    }


def test_targets_met_pass():
    report = fake_report()
    assert [r.verdict for r in report.rows() if r.verdict != "—"] == ["pass"] * 6  # (g): csv and mlflow
    md = report.markdown()
    assert (
        "Test CPU (2 cores)" in md
        and "torch 2.x, Avalanche 0.6" in md
        and "| measurement | result | target | verdict |" in md
    )
    assert "1.05x" in md and "≤ 1.10x" in md
    assert "2.000 ms (10.0% of an EpiNet training iteration)" in md  # store's share of 20 ms
    assert "900 MiB / 950 MiB" in md


@pytest.mark.parametrize(
    "kwargs, failing",
    [
        ({"harness": 1.2}, "(a)"),
        ({"epinet": 1.5}, "(b)"),
        ({"recall_100k": 0.05}, "(c)"),
        ({"quick": 400.0}, "(e)"),
        ({"tracking": fake_tracking(in_calls=0.031)}, "(g)"),
        ({"tracking": fake_tracking(in_calls=0.02, background=0.011)}, "(g)"),  # W&B's service counts too
    ],
)
def test_missed_target_fails(kwargs, failing):
    got = verdicts(fake_report(**kwargs))
    assert got[failing] == "**FAIL**"
    assert sum(v == "**FAIL**" for v in got.values()) == 1


def test_recall_target_is_judged_on_the_best_thread_count():
    # 30 ms with 1 thread misses 20 ms, but 15 ms with 2 threads meets it.
    assert verdicts(fake_report(recall_100k=0.030))["(c)"] == "pass"


def test_failed_sweep_fails_whatever_its_time():
    report = fake_report()
    report.measurements[-1] = QuickSweep("quick.yaml", 2, 1, 10.0, 0, SweepRuns(), log_tail="boom")
    assert verdicts(report)["(e)"] == "**FAIL**"
    assert "(exit 1)" in report.markdown()


def test_write_results_writes_json_and_markdown(tmp_path):
    report = fake_report()
    json_path, md_path = write_results(report, tmp_path / "out")
    data = json.loads(json_path.read_text())
    assert list(data["measurements"]) == ["harness", "epinet_vs_replay", "recall", "admission", "quick", "tracking"]
    assert data["measurements"]["tracking"]["overhead"] == {"csv": pytest.approx(1e-4), "mlflow": pytest.approx(0.004)}
    assert data["settings"]["targets"]["tracking_overhead"] == 0.03
    assert data["measurements"]["harness"]["ratio_harness_plain"] == pytest.approx(1.05)
    assert data["measurements"]["recall"]["by_threads"]["2"]["100000"]["median"] == pytest.approx(0.0075)
    assert [r["verdict"] for r in data["table"]] == [r.verdict for r in report.rows()]
    assert md_path.read_text() == report.markdown()


def test_cli_parses_perf_options_and_has_no_readme_option():
    args = build_parser().parse_args(["perf", "--repeats", "2", "--skip-quick", "--out", "x", "--data-root", "d"])
    assert (args.repeats, args.skip_quick, str(args.out), args.data_root, args.threads) == (2, True, "x", "d", 1)
    assert args.fn.__name__ == "cmd_perf"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["perf", "--update-readme", "README.md"])


def test_recall_latency_measures_each_capacity():
    threads = torch.get_num_threads()
    out = measure_recall(1, capacities=(100, 1000), thread_counts=(1,))
    assert torch.get_num_threads() == threads
    assert list(out.by_threads[1]) == [100, 1000]
    assert all(t.median > 0 and len(t.samples) == out.calls for t in out.by_threads[1].values())
    assert [r.measurement for r in out.rows()] == [
        f"(c) recall, 128 queries, d = 128, capacity {c:,}" for c in (100, 1000)
    ]


def indexed_recall(ms_one_thread=0.015, ms_two_threads=0.025, recall=0.99) -> IndexedRecall:
    def memory(what, target, recall_at_k):
        by_threads = {1: timing(ms_one_thread), 2: timing(ms_two_threads)}
        exact = {1: timing(0.1), 2: timing(0.06)}
        return IndexedMemory(what, target, by_threads, exact, recall_at_k, 1.5, timing(0.002), 627, 40, 0)

    memories = [memory("real latents", True, recall), memory("isotropic latents", False, 0.3)]
    return IndexedRecall("faiss-ivf", 128, 128, 5, 100_000, 20, 1, memories)


@pytest.mark.parametrize(
    "kwargs, verdicts",
    [
        ({}, ["pass", "pass", "—", "—"]),
        ({"ms_one_thread": 0.030, "ms_two_threads": 0.015}, ["pass", "pass", "—", "—"]),  # best thread count
        ({"ms_one_thread": 0.030, "ms_two_threads": 0.021}, ["**FAIL**", "pass", "—", "—"]),
        ({"recall": 0.9}, ["pass", "**FAIL**", "—", "—"]),
    ],
)
def test_recall_index_targets_judge_the_real_latents_only(kwargs, verdicts):
    rows = indexed_recall(**kwargs).rows()
    assert [r.verdict for r in rows] == verdicts
    assert rows[0].measurement.endswith("100,000 real latents: search, index built")
    assert rows[2].measurement.startswith("(c) for reference: recall with recall_index=faiss-ivf")
    assert "(627 lists, 40 probed, 0 in the exact head)" in rows[0].result and rows[3].result == "0.300"


def test_recall_index_without_faiss_is_one_row_naming_the_extra(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "faiss" else find_spec(name, *a))
    out = measure_recall_index(None, 1)
    [row] = out.rows()
    assert row.verdict == "—" and row.result.startswith("not measured:")
    assert "pip install epinet-bench[faiss]" in row.result
    assert json.loads(json.dumps(out.to_json()))["memories"] == []


def test_recall_index_measures_each_memory(synthetic_mnist, monkeypatch):
    pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install epinet-bench[faiss])")
    import epinet.recall_index
    from benchmarks.streams import build_benchmark

    monkeypatch.setattr(epinet.recall_index, "EXACT_BELOW", 0)  # the index itself, on a memory a test can afford
    threads = torch.get_num_threads()
    out = measure_recall_index(build_benchmark("split-mnist", synthetic_mnist, seed=0), 1, (1,), capacity=2000)
    assert torch.get_num_threads() == threads
    assert [m.target for m in out.memories] == [True, True, False]
    for m in out.memories:
        assert 0 <= m.recall_at_k <= 1 and m.build_seconds > 0 and m.lists >= 1 and 1 <= m.probed <= m.lists
        assert all(len(t.samples) == out.calls for t in (m.by_threads[1], m.exact_by_threads[1], m.refile))
    assert len(out.rows()) == 6
    assert json.loads(json.dumps(out.to_json()))["memories"][0]["lists"] == out.memories[0].lists


def test_bare_steps_time_the_models_own_observe(synthetic_mnist, monkeypatch):
    from benchmarks.streams import build_benchmark
    from epinet.model import EpiNetModel

    calls = []
    observe = EpiNetModel.observe

    def counting_observe(self, *args, **kwargs):
        calls.append(len(args[0]))
        return observe(self, *args, **kwargs)

    monkeypatch.setattr(EpiNetModel, "observe", counting_observe)
    bench = build_benchmark("split-mnist", synthetic_mnist, seed=0)
    steps = measure_bare_steps(bench, repeats=1, steps=2)
    assert calls == [128] * 4  # 2 steps, in the warm-up round and the one timed round
    assert steps.epinet_ms_per_step > 0 and set(steps.epinet_phase_ms) == {
        "forward",
        "loss",
        "backward",
        "optimizer",
        "store",
    }
    assert len(steps.rows()) == 5


def test_sweep_runs_reads_run_records(tmp_path):
    for strategy, rss in (("naive", 100), ("epinet", 300)):
        path = tmp_path / "runs" / "split-mnist" / strategy / "abc" / "seed0.json"
        path.parent.mkdir(parents=True)
        record = {
            "config": {"strategy": strategy, "benchmark": "split-mnist", "seed": 0},
            "metrics": {"peak_rss_bytes": rss, "train_seconds": 1.5, "eval_seconds": 0.5},
        }
        path.write_text(json.dumps(record))
    out = sweep_runs(tmp_path)
    assert out.runs == 2 and out.peak_rss_bytes_max_run == 300
    assert out.train_seconds == {"epinet/split-mnist/seed0": 1.5, "naive/split-mnist/seed0": 1.5}
    assert sweep_runs(tmp_path / "missing").peak_rss_bytes_max_run is None


def test_tracking_rows_separate_the_steady_state_from_the_fixed_cost():
    rows = fake_tracking().rows()
    assert [r.measurement.split(",")[0] for r in rows] == [
        "(g) `--log csv`",
        "(g) `--log mlflow`",
        "(g) fixed cost per run: opening the tracker (its first open in a process",
        "(g) `--log wandb`",
    ]
    assert rows[1].result.startswith("4.00 ms / 1.00 s = 0.40%; side by side: wall +0.0%, CPU +0.0%")
    assert rows[0].result.split("; ")[1].startswith("side by side: wall +20.0%")
    assert rows[2].result == "csv 0.00 ms (10.00 ms) + 0.00 ms + 0.00 ms; mlflow 20.00 ms (1.60 s) + 3.00 ms + 5.00 ms"
    assert rows[3].result.endswith("pip install epinet-bench[wandb]") and rows[3].verdict == "—"


def test_tracking_cost_times_the_trackers_own_calls(synthetic_mnist, monkeypatch):
    """The measurement's code path on tiny inputs: each side trains with its tracker attached and
    the tracker's calls are the ones timed; a missing package is a skipped row, not an error."""
    import benchmarks.perf.tracking_cost as tracking_cost
    from benchmarks.streams import build_benchmark
    from benchmarks.tracking.sinks import CsvSink

    calls = {"loss": 0, "row": 0}
    for name in calls:
        real = getattr(CsvSink, name)

        def counted(self, *args, name=name, real=real):
            calls[name] += 1
            return real(self, *args)

        monkeypatch.setattr(CsvSink, name, counted)
    monkeypatch.setattr(tracking_cost, "installed", lambda t: t != "wandb")
    bench = build_benchmark("split-mnist", synthetic_mnist, seed=0)
    out = measure_tracking(bench, repeats=2, trackers=("csv", "wandb"), loss_every=1)
    assert list(out.sides) == [NONE, "csv"] and out.trackers == ["csv"]
    assert all(
        list(parts) == list(PARTS) and all(len(t.samples) == 2 for t in parts.values()) for parts in out.sides.values()
    )
    # 3 rounds (warm-up + 2), each 2 experiences of one iteration: a loss and a row each
    assert calls == {"loss": 6, "row": 6}
    assert out.sides["csv"]["in_calls"].median > 0 and out.steady_seconds("csv") >= 0
    assert list(out.first_open) == ["csv"] and out.skipped["wandb"].endswith("pip install epinet-bench[wandb]")
    assert [r.measurement.split(",")[0] for r in out.rows()][::2] == ["(g) `--log csv`", "(g) `--log wandb`"]
    assert set(json.loads(json.dumps(out.to_json()))["overhead"]) == {"csv"}


# ----------------------------------------------------------------------------- (f) Ray, and the device


def ray_overhead(local: float, ray: float, returncode: int = 0) -> RayOverhead:
    runs = SweepRuns({"a": 1, "b": 1}, {"a": 60.0, "b": 60.0}, {"a": 10.0, "b": 10.0})  # 140 s of own work
    return RayOverhead("quick.yaml", 2, local, ray, returncode, runs, runs)


def test_ray_overhead_is_judged_on_the_wall_time_ratio():
    assert ray_overhead(100.0, 109.0).rows()[0].verdict == "pass"
    assert ray_overhead(100.0, 111.0).rows()[0].verdict == "**FAIL**"
    assert ray_overhead(100.0, 50.0, returncode=1).rows()[0].verdict == "**FAIL**"  # a failed sweep, however fast
    # worker time outside the runs' own work, per run: (2 x 110 - 140) / 2 = 40 s against (2 x 100 - 140) / 2 = 30 s
    assert ray_overhead(100.0, 110.0).rows()[1].result == "40.0 s / 30.0 s (+10.0 s per run)"
    data = ray_overhead(100.0, 110.0).to_json()
    assert data["ratio"] == pytest.approx(1.1)
    assert data["overhead_seconds_per_run"] == {"ray": pytest.approx(40.0), "local": pytest.approx(30.0)}


def test_report_names_the_device_it_trained_on(tmp_path):
    report = fake_report()
    report.device = {"type": "cpu", "name": "Test CPU"}
    assert "training on" not in report.markdown()
    report.device = {"type": "cuda", "index": 0, "name": "NVIDIA H100 80GB HBM3", "cuda": "13.0"}
    assert "on Test CPU (2 cores), training on NVIDIA H100 80GB HBM3," in report.markdown()
    json_path, _ = write_results(report, tmp_path)
    assert json.loads(json_path.read_text())["device"]["name"] == "NVIDIA H100 80GB HBM3"


def test_cli_parses_device_and_skip_ray():
    args = build_parser().parse_args(["perf", "--device", "cuda:1", "--skip-ray"])
    assert (args.device, args.skip_ray, args.skip_quick) == ("cuda:1", True, False)
    assert build_parser().parse_args(["perf"]).device is None  # devices.parse makes it cpu
