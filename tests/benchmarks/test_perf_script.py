"""``epinet-bench perf``'s plumbing: the table's verdicts, the README splice, the CLI, and the
recall-latency measurement on small memories (the timings themselves are not tested)."""

from __future__ import annotations

import pytest
import torch

from benchmarks import perf
from benchmarks.cli import build_parser


def fake_results(harness=1.05, epinet=1.2, recall_100k=0.015, quick=250.0) -> dict:
    def timing(median):
        return {"median": median, "min": median, "max": median, "samples": [median]}

    return {
        "created": "2025-01-01T00:00:00+00:00",
        "machine": {"cpu": "Test CPU", "cores": 2, "platform": "Linux", "python": "3.11", "torch": "2.x", "avalanche": "0.6"},
        "settings": {"repeats": 3, "threads": 1},
        "load_before": [0.1, 0.1, 0.1],
        "load_after": [0.2, 0.2, 0.2],
        "measurements": {
            "harness": {
                "samples": 11399,
                "batch_size": 128,
                "seconds": {"harness": timing(harness), "plain": timing(1.0), "stock_avalanche": timing(1.5)},
                "ratio_harness_plain": harness,
                "ratio_stock_plain": 1.5,
            },
            "epinet_vs_replay": {
                "memory": 500,
                "backbone": "mlp",
                "batch_size": 128,
                "seconds": {"epinet": timing(epinet), "replay": timing(1.0)},
                "ms_per_iteration": {"epinet": 20.0, "replay": 10.0},
                "ratio_epinet_replay": epinet,
            },
            "recall": {
                "queries": 128,
                "d": 128,
                "by_threads": {
                    "1": {"100": timing(1e-4), "100000": timing(recall_100k)},
                    "2": {"100": timing(1e-4), "100000": timing(recall_100k / 2)},
                },
            },
            "admission": {"batch": 128, "admit": {"500": timing(1e-3)}, "plugin_iteration": {"500": timing(2e-3)}},
            "quick": {
                "jobs": 2,
                "runs": 10,
                "returncode": 0,
                "wall_seconds": quick,
                "peak_rss_bytes_max_run": 900 * 2**20,
                "peak_rss_bytes_process_tree": 950 * 2**20,
            },
        },
    }


def verdicts(results) -> dict[str, str]:
    return {r["measurement"][:3]: r["verdict"] for r in perf.table_rows(results) if r["verdict"] != "—"}


def test_targets_met_pass():
    results = fake_results()
    results["table"] = perf.table_rows(results)
    rows = [r for r in results["table"] if r["verdict"] != "—"]
    assert [r["verdict"] for r in rows] == ["pass"] * 4
    md = perf.markdown(results)
    assert "Test CPU (2 cores)" in md and "| measurement | result | target | verdict |" in md
    assert "1.05x" in md and "≤ 1.10x" in md


@pytest.mark.parametrize(
    "kwargs, failing",
    [({"harness": 1.2}, "(a)"), ({"epinet": 1.5}, "(b)"), ({"recall_100k": 0.05}, "(c)"), ({"quick": 400.0}, "(e)")],
)
def test_missed_target_fails(kwargs, failing):
    got = verdicts(fake_results(**kwargs))
    assert got[failing] == "**FAIL**"
    assert sum(v == "**FAIL**" for v in got.values()) == 1


def test_update_readme_splices_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- perf-table:start -->\nold\n<!-- perf-table:end -->\nafter\n")
    perf.update_readme(readme, "| new |\n")
    assert readme.read_text() == "intro\n<!-- perf-table:start -->\n| new |\n<!-- perf-table:end -->\nafter\n"
    (tmp_path / "bare.md").write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        perf.update_readme(tmp_path / "bare.md", "x")


def test_cli_parses_perf_options():
    args = build_parser().parse_args(["perf", "--repeats", "2", "--skip-quick", "--out", "x", "--data-root", "d"])
    assert (args.repeats, args.skip_quick, str(args.out), args.data_root, args.threads) == (2, True, "x", "d", 1)
    assert args.fn.__name__ == "cmd_perf"


def test_recall_latency_measures_each_capacity():
    threads = torch.get_num_threads()
    out = perf.measure_recall(1, capacities=(100, 1000), thread_counts=(1,))
    assert torch.get_num_threads() == threads
    rows = out["by_threads"]["1"]
    assert list(rows) == ["100", "1000"]
    assert all(r["median"] > 0 and len(r["samples"]) == out["calls"] for r in rows.values())


def test_sweep_runs_summary_reads_run_records(tmp_path):
    import json

    for strategy, rss in (("naive", 100), ("epinet", 300)):
        path = tmp_path / "runs" / "split-mnist" / strategy / "abc" / "seed0.json"
        path.parent.mkdir(parents=True)
        record = {
            "config": {"strategy": strategy, "benchmark": "split-mnist", "seed": 0},
            "metrics": {"peak_rss_bytes": rss, "train_seconds": 1.5, "eval_seconds": 0.5},
        }
        path.write_text(json.dumps(record))
    out = perf.sweep_runs_summary(tmp_path)
    assert out["runs"] == 2 and out["peak_rss_bytes_max_run"] == 300
    assert out["train_seconds_by_run"] == {"epinet/split-mnist/seed0": 1.5, "naive/split-mnist/seed0": 1.5}
    assert perf.sweep_runs_summary(tmp_path / "missing")["peak_rss_bytes_max_run"] is None
