"""``epinet-bench perf``: take the measurements in turn and write ``perf.json`` and ``perf.md``."""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch

from benchmarks import devices, provenance
from benchmarks.extras import require
from benchmarks.perf.admission import measure_admission
from benchmarks.perf.harness import measure_harness
from benchmarks.perf.online import measure_online
from benchmarks.perf.per_experience import measure_epinet_vs_replay
from benchmarks.perf.ray_overhead import measure_ray_overhead
from benchmarks.perf.recall import measure_recall, measure_recall_index
from benchmarks.perf.report import Measurement, PerfReport
from benchmarks.perf.steps import measure_bare_steps
from benchmarks.perf.sweep import measure_quick
from benchmarks.perf.tracking_cost import measure_tracking


def _load_average() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def run_perf(
    *,
    repeats: int = 5,
    data_root: str | None = None,
    threads: int = 1,
    quick: bool = True,
    ray: bool = True,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> PerfReport:
    from benchmarks.data import load_mnist
    from benchmarks.streams import build_benchmark

    if repeats < 1:
        raise ValueError(f"--repeats must be at least 1 (got {repeats})")
    if threads < 1:
        raise ValueError(f"--threads must be at least 1 (got {threads})")
    ray = ray and quick  # (f) compares with (e)'s sweep
    if ray:
        require("ray", "ray", "perf's (f) (Ray against the local pool; --skip-ray skips it)")
    resolved = devices.resolve(device)
    device = str(resolved)
    torch.set_num_threads(threads)
    data = load_mnist(data_root)
    bench = build_benchmark("split-mnist", data, seed=0)
    report = PerfReport(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=provenance.machine(),
        versions=provenance.package_versions(),
        code=provenance.code_version(),
        repeats=repeats,
        threads=threads,
        data_root=str(data.root),
        load_before=_load_average(),
    )

    def measure(label: str, fn: Callable[[], Measurement]) -> Measurement:
        log(f"perf: {label} ...")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Avalanche's @deprecated re-arms its own filter on every call: drop what it shows.
            warnings.showwarning = lambda *args, **kwargs: None
            measurement = fn()
        log(f"perf: {label} done in {time.perf_counter() - start:.0f} s")
        torch.set_num_threads(threads)  # a measurement may have changed it
        report.measurements.append(measurement)
        return measurement

    measure("(a) harness vs plain loop", lambda: measure_harness(bench, repeats, device))
    # (h) beside (a): both against a plain loop (CPU only: the online protocol is about per-call overhead)
    measure("(h) online protocol at batch 10 vs plain loop", lambda: measure_online(bench, repeats))
    per_experience = measure(
        "(b) EpiNet vs replay, per experience", lambda: measure_epinet_vs_replay(bench, repeats, device)
    )
    measure("(b) bare training steps", lambda: measure_bare_steps(bench, repeats, device=device))
    thread_counts = sorted({threads, os.cpu_count() or 1})
    measure("(c) recall latency", lambda: measure_recall(repeats, thread_counts=thread_counts, device=device))
    measure(
        "(c) recall with the faiss-ivf index", lambda: measure_recall_index(bench, repeats, thread_counts=thread_counts)
    )
    iteration_ms = per_experience.epinet_ms_per_iteration  # (d) reports its costs against it
    measure(
        "(d) admission cost", lambda: measure_admission(bench, repeats, epinet_iteration_ms=iteration_ms, device=device)
    )
    if quick:
        local = measure(
            "(e) quick.yaml sweep, --jobs 2 (a few minutes)", lambda: measure_quick(str(data.root), device=device)
        )
        if ray:
            measure(
                "(f) quick.yaml sweep on Ray, --jobs 2 (a few minutes)",
                lambda: measure_ray_overhead(local, str(data.root), device=device),
            )
    # last: W&B's service, once started, stays up until this process ends
    measure("(g) tracking overhead, each --log tracker", lambda: measure_tracking(bench, repeats))
    report.device = provenance.device_info(resolved)  # after the measurements: a GPU's peak memory is theirs
    report.load_after = _load_average()
    return report


def write_results(report: PerfReport, out: Path) -> tuple[Path, Path]:
    """``<out>/perf.json`` (every sample, the machine and the code version) and ``<out>/perf.md`` (the table)."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "perf.json", out / "perf.md"
    json_path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    md_path.write_text(report.markdown())
    return json_path, md_path
