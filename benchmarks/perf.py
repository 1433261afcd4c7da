"""``epinet-bench perf``: how fast the harness and EpiNet are, on the machine it runs on.

A benchmark script, not a timed test. Every comparison runs its sides in one process,
interleaved (A, B, A, B, ...), after one untimed warm-up round, and reports the median of each
side over ``--repeats`` and the ratio of the medians:

(a) one epoch of Naive on Split-MNIST's first training experience through the harness
    (the registry's ``naive`` strategy on ``StrategySetup``, built as the runner builds it;
    timed from ``strategy.train(exp)`` start to end) vs a plain PyTorch loop on the same
    model architecture, tensors, batch size and optimiser; Avalanche's stock per-sample data
    path (``fast_data=False``) is timed alongside, for reference;
(b) EpiNet vs reservoir replay, same memory budget (500), backbone (mlp) and batch size (128):
    training time of the second experience, the memory already filled by the first; plus
    the same comparison on bare training steps outside Avalanche, broken down by phase, to
    tell the method's own compute from harness overhead;
(c) recall latency of 128 queries (d = 128) against a full memory of 100 ... 100,000 items;
(d) admission cost of a training batch of 128 into a full memory (500 and 10,000 items), and
    the EpiNet plugin's whole per-iteration bookkeeping (per-sample loss, admission, tick);
(e) wall time and peak RSS of a full ``quick.yaml`` sweep with ``--jobs 2`` (a subprocess).

Writes ``<out>/perf.json`` and ``<out>/perf.md`` (the table, with the machine it came from).
Timings are only as good as the machine is quiet: other processes on a 2-core machine
inflate and scatter them (the JSON keeps every sample and the load average).
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

CONFIGS = Path(__file__).resolve().parent / "configs"
RECALL_CAPACITIES = (100, 1_000, 10_000, 100_000)
ADMIT_CAPACITIES = (500, 10_000)
BATCH, LATENT = 128, 128

# The targets on a 2-core machine.
TARGETS = {
    "harness_ratio": 1.10,  # (a) harness / plain loop
    "epinet_replay_ratio": 1.30,  # (b) EpiNet / replay, per experience
    "recall_100k_ms": 20.0,  # (c) 128 queries against 100,000 memories
    "quick_seconds": 300.0,  # (e) quick.yaml with --jobs 2
    "paper_seconds": 3600.0,  # paper.yaml with --jobs 2 (not run by this script)
}


# ---------------------------------------------------------------- machine and timing helpers


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    from importlib.metadata import version

    try:
        avalanche = version("avalanche-lib")
    except Exception:
        avalanche = "unknown"
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "avalanche": avalanche,
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def summary(samples: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "samples": samples}


def interleaved(sides: dict[str, Callable[[], float]], repeats: int, warmup: int = 1) -> dict[str, dict[str, Any]]:
    """Run each side's timed function in turn (A, B, A, B, ...); each returns seconds.

    ``warmup`` untimed rounds come first (lazy imports, allocator and kernel warm-up)."""
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(warmup + repeats):
        for name, fn in sides.items():
            gc.collect()
            seconds = fn()
            if round_ >= warmup:
                samples[name].append(seconds)
    return {name: summary(s) for name, s in samples.items()}


def ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
    return a["median"] / b["median"]


def time_calls(fn: Callable[[], Any], calls: int, warmup: int = 3) -> dict[str, Any]:
    """Per-call seconds of ``calls`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return summary(samples)


# ---------------------------------------------------------------- shared setup


def _setup(bench, **overrides):
    """A StrategySetup as the runner builds it for ``bench`` with RunConfig's defaults."""
    from dataclasses import replace

    from benchmarks.config import RunConfig
    from benchmarks.runner import AccuracyPlugin, strategy_setup

    defaults = RunConfig(benchmark=bench.name, strategy="naive")
    return replace(strategy_setup(defaults, bench, [AccuracyPlugin()]), **overrides)


def _build(name: str, bench, seed: int = 0, options: dict | None = None, **overrides):
    from baselines.registry import get_strategy
    from benchmarks.runner import seed_everything

    spec = get_strategy(name)
    setup = _setup(bench, **overrides)
    options = spec.validate_options(options or {}, setup.memory)
    seed_everything(seed)
    return spec.build(setup, options)


def _timed_train(strategy, experience) -> float:
    start = time.perf_counter()
    strategy.train(experience)
    return time.perf_counter() - start


# ---------------------------------------------------------------- (a) harness vs plain loop


def plain_epoch(setup, tensors, seed: int = 0) -> float:
    """One epoch of the same model, optimiser, tensors and batch size in a bare PyTorch loop."""
    torch.manual_seed(seed)
    model = setup.classifier()
    optimizer = setup.make_optimizer(model)
    criterion = nn.CrossEntropyLoss()
    x, y = tensors[0], tensors[1]
    start = time.perf_counter()
    model.train()
    order = torch.randperm(len(y))
    for i in range(0, len(y), setup.batch_size):
        idx = order[i : i + setup.batch_size]
        optimizer.zero_grad()
        loss = criterion(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def measure_harness(bench, repeats: int) -> dict[str, Any]:
    experience = bench.train_stream[0]
    setup = _setup(bench)

    def harness(fast: bool) -> float:
        return _timed_train(_build("naive", bench, fast_data=fast), experience)

    timings = interleaved(
        {"harness": lambda: harness(True), "plain": lambda: plain_epoch(setup, experience.tensors), "stock_avalanche": lambda: harness(False)},
        repeats,
    )
    n = len(experience)
    return {
        "what": "Naive, one epoch over Split-MNIST train experience 0",
        "samples": n,
        "iterations": math.ceil(n / setup.batch_size),
        "batch_size": setup.batch_size,
        "optimizer": setup.optimizer,
        "seconds": timings,
        "ratio_harness_plain": ratio(timings["harness"], timings["plain"]),
        "ratio_stock_plain": ratio(timings["stock_avalanche"], timings["plain"]),
    }


# ---------------------------------------------------------------- (b) EpiNet vs replay


def paper_epinet_options() -> dict[str, Any] | None:
    """EpiNet's options in paper.yaml (the settings the reference results use), if any."""
    try:
        from benchmarks.config import load_sweep

        options = load_sweep(CONFIGS / "paper.yaml").strategy_options.get("epinet")
    except Exception:
        return None
    return dict(options) if options else None


def measure_epinet_vs_replay(bench, repeats: int) -> dict[str, Any]:
    first, second = bench.train_stream[0], bench.train_stream[1]

    def second_experience(name: str, options: dict | None = None) -> float:
        strategy = _build(name, bench, options=options)
        strategy.train(first)  # fills the memory / buffer (untimed)
        return _timed_train(strategy, second)

    sides = {"epinet": lambda: second_experience("epinet"), "replay": lambda: second_experience("replay")}
    paper = paper_epinet_options()
    if paper:  # for information: the target is judged on EpiNet's defaults
        sides["epinet_paper"] = lambda: second_experience("epinet", paper)
    timings = interleaved(sides, repeats)
    setup = _setup(bench)
    iterations = math.ceil(len(second) / setup.batch_size)
    return {
        "what": "training time of Split-MNIST experience 1 after experience 0",
        "memory": setup.memory,
        "backbone": setup.backbone,
        "batch_size": setup.batch_size,
        "iterations": iterations,
        "seconds": timings,
        "ms_per_iteration": {k: 1000 * v["median"] / iterations for k, v in timings.items()},
        "ratio_epinet_replay": ratio(timings["epinet"], timings["replay"]),
        "epinet_paper_options": paper,
        "ratio_epinet_paper_replay": ratio(timings["epinet_paper"], timings["replay"]) if paper else None,
    }


def _filled_model(bench, capacity: int | None = None):
    """An EpiNetModel (default config) whose memory is full of real, encoded samples."""
    from baselines.epinet import EpiNetOptions, config_for
    from epinet.model import EpiNetModel

    setup = _setup(bench)
    torch.manual_seed(0)
    model = EpiNetModel(config_for(EpiNetOptions(), capacity or setup.memory), setup.backbone, bench.n_classes)
    x, y, t = bench.train_stream[0].tensors
    n = model.config.capacity
    idx = torch.randint(len(y), (n,))
    with torch.no_grad():
        model.memorize(x[idx], model.encode(x[idx]), torch.rand(n), y[idx], t[idx])
    return model


def measure_bare_steps(bench, repeats: int, steps: int = 40) -> dict[str, Any]:
    """EpiNet's and replay's training steps without Avalanche, phase by phase.

    Replay: one forward of a 256-sample batch (128 current + 128 buffer), backward, Adam.
    EpiNet: main forward (with recall), replay forward on 128 memories (with recall),
    backward, Adam, then per-sample loss + admission + clock tick, as ``EpiNetPlugin`` does.
    """
    setup = _setup(bench)
    x, y, t = bench.train_stream[1].tensors
    b = setup.batch_size
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(len(y), (b,), generator=g) for _ in range(steps)]

    torch.manual_seed(0)
    classifier = setup.classifier()
    c_opt = setup.make_optimizer(classifier)
    buffer = torch.randint(len(y), (setup.memory,), generator=g)

    def replay_steps() -> dict[str, float]:
        phases = dict.fromkeys(("forward", "backward", "optimizer"), 0.0)
        for idx in batches:
            mem = buffer[torch.randint(len(buffer), (b,))]
            xb, yb = torch.cat([x[idx], x[mem]]), torch.cat([y[idx], y[mem]])
            t0 = time.perf_counter()
            c_opt.zero_grad()
            loss = F.cross_entropy(classifier(xb), yb)
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            c_opt.step()
            t3 = time.perf_counter()
            phases["forward"] += t1 - t0
            phases["backward"] += t2 - t1
            phases["optimizer"] += t3 - t2
        return phases

    model = _filled_model(bench)
    e_opt = setup.make_optimizer(model)

    def epinet_steps() -> dict[str, float]:
        phases = dict.fromkeys(("main_forward", "replay_forward", "backward", "optimizer", "admission"), 0.0)
        for idx in batches:
            xb, yb, tb = x[idx], y[idx], t[idx]
            t0 = time.perf_counter()
            e_opt.zero_grad()
            logits = model(xb)
            latent = model.last_latent
            loss = F.cross_entropy(logits, yb)
            t1 = time.perf_counter()
            loss = loss + model.replay_term(b)
            t2 = time.perf_counter()
            loss.backward()
            t3 = time.perf_counter()
            e_opt.step()
            t4 = time.perf_counter()
            model.memorize(xb, latent, F.cross_entropy(logits.detach(), yb, reduction="none"), yb, tb)
            model.tick()
            t5 = time.perf_counter()
            for key, seconds in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                phases[key] += seconds
        return phases

    records: dict[str, list[dict[str, float]]] = {"epinet": [], "replay": []}
    sides = {"epinet": epinet_steps, "replay": replay_steps}
    for round_ in range(1 + repeats):
        for name, fn in sides.items():
            gc.collect()
            phases = fn()
            if round_:
                records[name].append(phases)

    out: dict[str, Any] = {"steps": steps, "ms_per_step": {}, "phase_ms_per_step": {}}
    for name, runs in records.items():
        totals = [sum(r.values()) for r in runs]
        out["ms_per_step"][name] = 1000 * statistics.median(totals) / steps
        out["phase_ms_per_step"][name] = {k: 1000 * statistics.median(r[k] for r in runs) / steps for k in runs[0]}
    out["ratio_epinet_replay"] = out["ms_per_step"]["epinet"] / out["ms_per_step"]["replay"]
    out["components_ms"] = _components(model, classifier, x[:b], 2 * b, max(20, 4 * repeats))
    out["parameters"] = {
        "epinet": sum(p.numel() for p in model.parameters()),
        "replay": sum(p.numel() for p in classifier.parameters()),
    }
    out["forward_macs_per_sample"] = {
        "epinet": _linear_macs(model) + model.config.capacity * model.config.latent_dim,  # + recall's cosine matmul
        "replay": _linear_macs(classifier),
    }
    return out


def _components(model, classifier, xb: torch.Tensor, replay_batch: int, calls: int) -> dict[str, float]:
    """Forward + backward of each part on one training step's worth of data, in ms: EpiNet
    runs every part twice on 128 samples (main and replay batch), replay once on 256."""
    x2 = xb.repeat(2, 1, 1, 1)[:replay_batch]
    z = model.encode(xb).detach()
    with torch.no_grad():
        r = model.recall(z)

    def encoder():
        model.encode(xb).sum().backward()

    def decoder():
        model.decoder(z.requires_grad_(), r).sum().backward()

    def recall():
        with torch.no_grad():
            model.recall(z)

    def whole_classifier():
        classifier(x2).sum().backward()

    ms = {name: 1000 * time_calls(fn, calls)["median"] for name, fn in (("encoder", encoder), ("decoder", decoder), ("recall", recall), ("classifier", whole_classifier))}
    model.zero_grad(set_to_none=True)
    classifier.zero_grad(set_to_none=True)
    return {
        "epinet_encoder_2x128": 2 * ms["encoder"],
        "epinet_decoder_2x128": 2 * ms["decoder"],
        "epinet_recall_2x128": 2 * ms["recall"],
        "replay_classifier_256": ms["classifier"],
    }


def _linear_macs(model: nn.Module) -> int:
    """Multiply-accumulates per sample of a model's dense layers (weights of dim >= 2)."""
    return sum(p.numel() for name, p in model.named_parameters() if p.dim() >= 2)


# ---------------------------------------------------------------- (c) recall latency


def _random_memory(capacity: int, now: float = 1_000.0, class_balanced: bool = False):
    from epinet.memory import EpisodicMemory

    g = torch.Generator().manual_seed(capacity)
    memory = EpisodicMemory(capacity, (1, 28, 28), LATENT, class_balanced)
    memory.z.copy_(torch.randn(capacity, LATENT, generator=g))
    memory.c.copy_(F.normalize(memory.z, dim=1))
    memory.r0.copy_(torch.rand(capacity, generator=g) * 2)
    memory.tau.copy_(torch.rand(capacity, generator=g, dtype=torch.float64) * now)
    memory.y.copy_(torch.randint(10, (capacity,), generator=g))
    memory.size.fill_(capacity)
    return memory


def measure_recall(repeats: int, capacities=RECALL_CAPACITIES, thread_counts=(None,)) -> dict[str, Any]:
    from epinet.model import EpiNetConfig
    from epinet.recall import RecallEngine

    config = EpiNetConfig()  # default top_k, alpha
    engine = RecallEngine(config.top_k)
    now = torch.tensor(1_000.0, dtype=torch.float64)
    queries = torch.randn(BATCH, LATENT, generator=torch.Generator().manual_seed(1))
    calls = max(20, 4 * repeats)
    default_threads = torch.get_num_threads()
    results: dict[str, Any] = {"queries": BATCH, "d": LATENT, "top_k": config.top_k, "calls": calls, "by_threads": {}}
    for threads in thread_counts:
        threads = threads or default_threads
        torch.set_num_threads(threads)
        rows, floors = {}, {}
        for capacity in capacities:
            memory = _random_memory(capacity)

            def recall():
                with torch.no_grad():
                    return engine.recall(queries, memory, now, config.alpha)

            rows[str(capacity)] = time_calls(recall, calls)
            # The floor under any exact recall: the cosine matmul alone, into reused storage.
            keys, out = memory.c.T, torch.empty(BATCH, capacity)
            floors[str(capacity)] = time_calls(lambda: torch.mm(queries, keys, out=out), calls)
            del memory, keys, out
            gc.collect()
        results["by_threads"][str(threads)] = rows
        results.setdefault("matmul_only_by_threads", {})[str(threads)] = floors
    torch.set_num_threads(default_threads)
    return results


# ---------------------------------------------------------------- (d) admission cost


def measure_admission(bench, repeats: int, capacities=ADMIT_CAPACITIES) -> dict[str, Any]:
    from types import SimpleNamespace

    from epinet.plugin import EpiNetPlugin

    calls = max(50, 10 * repeats)
    x, y, t = bench.train_stream[1].tensors
    g = torch.Generator().manual_seed(2)
    out: dict[str, Any] = {"batch": BATCH, "calls": calls, "admit": {}, "admit_class_balanced": {}, "plugin_iteration": {}}
    for key, class_balanced in (("admit", False), ("admit_class_balanced", True)):
        for capacity in capacities:
            memory = _random_memory(capacity, class_balanced=class_balanced)
            clock = [1_000.0]

            def admit():
                idx = torch.randint(len(y), (BATCH,), generator=g)
                clock[0] += 1
                z = torch.randn(BATCH, LATENT, generator=g)
                memory.admit(x[idx], z, torch.rand(BATCH, generator=g) * 2, y[idx], t[idx], clock[0], 1e-3)

            # The batch gather and random draws are timed too: microseconds beside admission.
            out[key][str(capacity)] = time_calls(admit, calls)

    # The plugin's whole per-iteration bookkeeping on a memory of the run's size:
    # after_forward + after_training_iteration (per-sample loss, admission, tick).
    model = _filled_model(bench)
    plugin = EpiNetPlugin()
    idx = torch.randint(len(y), (BATCH,), generator=g)
    with torch.no_grad():
        logits = model(x[idx])
    strategy = SimpleNamespace(model=model, mb_x=x[idx], mb_y=y[idx], mb_task_id=t[idx], mb_output=logits)

    def bookkeeping():
        plugin.after_forward(strategy)
        plugin.after_training_iteration(strategy)

    out["plugin_iteration"][str(model.config.capacity)] = time_calls(bookkeeping, calls)
    return out


# ---------------------------------------------------------------- (e) quick sweep


def measure_quick(data_root: str | None, config: Path = CONFIGS / "quick.yaml", jobs: int = 2) -> dict[str, Any]:
    """Run ``epinet-bench sweep <config> --jobs N`` in a subprocess, into a scratch directory."""
    with tempfile.TemporaryDirectory(prefix="epinet-perf-") as scratch:
        results = Path(scratch) / "results"
        cmd = [sys.executable, "-m", "benchmarks.cli", "sweep", str(config), "--jobs", str(jobs), "--results", str(results), "-q"]
        if data_root:
            cmd += ["--data-root", str(data_root)]
        log_path = Path(scratch) / "sweep.log"
        with open(log_path, "wb") as log:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
        out = {
            "config": str(config.name),
            "jobs": jobs,
            "returncode": proc.returncode,
            "wall_seconds": wall,
            # Largest resident set among the sweep process and its waited-for descendants.
            "peak_rss_bytes_process_tree": usage.ru_maxrss * 1024,
            **sweep_runs_summary(results),
        }
        if proc.returncode != 0:
            out["log_tail"] = log_path.read_text(errors="replace")[-4000:]
        return out


def sweep_runs_summary(results: Path) -> dict[str, Any]:
    """Per-run peak RSS, train and eval seconds from a results directory's run JSONs."""
    runs = [json.loads(p.read_text()) for p in sorted(Path(results).glob("runs/**/*.json"))]

    def by_run(key):
        return {f"{r['config']['strategy']}/{r['config']['benchmark']}/seed{r['config']['seed']}": r["metrics"][key] for r in runs}

    peaks = by_run("peak_rss_bytes")
    return {
        "runs": len(runs),
        "peak_rss_bytes_max_run": max(peaks.values()) if peaks else None,
        "peak_rss_bytes_by_run": peaks,
        "train_seconds_by_run": by_run("train_seconds"),
        "eval_seconds_by_run": by_run("eval_seconds"),
    }


# ---------------------------------------------------------------- report


def _run_seconds(q: dict[str, Any]) -> str:
    train, evals = q.get("train_seconds_by_run") or {}, q.get("eval_seconds_by_run") or {}
    if not train:
        return ""
    return f"; the runs' own training + evaluation: {sum(train.values()):.0f} + {sum(evals.values()):.0f} s over {q['jobs']} workers"


def _pf(ok: bool | None) -> str:
    return "—" if ok is None else ("pass" if ok else "**FAIL**")


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _mib(n: int | None) -> str:
    return "—" if n is None else f"{n / 2**20:.0f} MiB"


def table_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """(measurement, result, target, verdict) rows; a verdict is pass, FAIL or — (no target)."""
    rows = []

    def row(measurement, result, target="—", ok=None):
        rows.append({"measurement": measurement, "result": result, "target": target, "verdict": _pf(ok)})

    m = results["measurements"]
    if "harness" in m:
        a = m["harness"]
        s = a["seconds"]
        row(
            f"(a) Naive, one epoch ({a['samples']:,} samples, batch {a['batch_size']}): harness / plain PyTorch loop",
            f"{_ms(s['harness']['median'])} / {_ms(s['plain']['median'])} = {a['ratio_harness_plain']:.2f}x",
            f"≤ {TARGETS['harness_ratio']:.2f}x",
            a["ratio_harness_plain"] <= TARGETS["harness_ratio"],
        )
        row(
            "(a) for reference: Avalanche's stock per-sample data path / plain loop",
            f"{_ms(s['stock_avalanche']['median'])} / {_ms(s['plain']['median'])} = {a['ratio_stock_plain']:.2f}x",
        )
    if "epinet_vs_replay" in m:
        b = m["epinet_vs_replay"]
        s = b["seconds"]
        row(
            f"(b) training time per experience, EpiNet / reservoir replay (memory {b['memory']}, {b['backbone']}, batch {b['batch_size']})",
            f"{_ms(s['epinet']['median'])} / {_ms(s['replay']['median'])} = {b['ratio_epinet_replay']:.2f}x",
            f"≤ {TARGETS['epinet_replay_ratio']:.2f}x",
            b["ratio_epinet_replay"] <= TARGETS["epinet_replay_ratio"],
        )
        if b.get("ratio_epinet_paper_replay"):
            options = ", ".join(f"{k}={v}" for k, v in b["epinet_paper_options"].items())
            row(
                f"(b) same, EpiNet with paper.yaml's options ({options}) / replay",
                f"{_ms(s['epinet_paper']['median'])} / {_ms(s['replay']['median'])} = {b['ratio_epinet_paper_replay']:.2f}x",
            )
    if "bare_steps" in m:
        c = m["bare_steps"]
        e, r = c["phase_ms_per_step"]["epinet"], c["phase_ms_per_step"]["replay"]
        row(
            "(b) same, bare training steps outside Avalanche (the methods' own compute)",
            f"{c['ms_per_step']['epinet']:.2f} / {c['ms_per_step']['replay']:.2f} ms per step = {c['ratio_epinet_replay']:.2f}x",
        )
        row(
            "(b) EpiNet step by phase: main fwd + replay fwd + backward + Adam + admission",
            " + ".join(f"{e[k]:.2f}" for k in ("main_forward", "replay_forward", "backward", "optimizer", "admission")) + " ms",
        )
        row(
            "(b) replay step by phase: fwd (256 samples) + backward + Adam",
            " + ".join(f"{r[k]:.2f}" for k in ("forward", "backward", "optimizer")) + " ms",
        )
        k = c["components_ms"]
        row(
            "(b) forward + backward per step: EpiNet encoder + decoder (+ recall, no grad), each on 2 x 128; replay's whole classifier on 256",
            f"{k['epinet_encoder_2x128']:.2f} + {k['epinet_decoder_2x128']:.2f} (+ {k['epinet_recall_2x128']:.2f}) ms vs {k['replay_classifier_256']:.2f} ms",
        )
        macs = c["forward_macs_per_sample"]
        row(
            "(b) forward multiply-adds per sample (dense layers + recall), EpiNet / replay",
            f"{macs['epinet'] / 1e3:,.0f}k / {macs['replay'] / 1e3:,.0f}k = {macs['epinet'] / macs['replay']:.2f}x",
        )
    if "recall" in m:
        rc = m["recall"]
        threads = str(results["settings"]["threads"])
        by = rc["by_threads"]
        others = [t for t in by if t != threads]
        previous = None
        for capacity, timing in by[threads].items():
            cap = int(capacity)
            growth = "" if previous is None else f" ({timing['median'] / previous:.1f}x the previous)"
            extra = "".join(f"; {by[t][capacity]['median'] * 1000:.2f} ms with {t} threads" for t in others)
            is_target = cap == 100_000
            floor = rc.get("matmul_only_by_threads", {}).get(threads, {}).get(capacity)
            if floor is not None:
                extra += f"; its cosine matmul alone, {threads} thread(s): {floor['median'] * 1000:.2f} ms"
            best_ms = 1000 * min(by[t][capacity]["median"] for t in by)  # the target: any thread count
            row(
                f"(c) recall, {rc['queries']} queries, d = {rc['d']}, capacity {cap:,}",
                f"{timing['median'] * 1000:.2f} ms with {threads} thread(s){growth}{extra}",
                f"≤ {TARGETS['recall_100k_ms']:.0f} ms (best thread count)" if is_target else "—",
                best_ms <= TARGETS["recall_100k_ms"] if is_target else None,
            )
            previous = timing["median"]
    if "admission" in m:
        d = m["admission"]
        step = None
        if "epinet_vs_replay" in m:
            step = m["epinet_vs_replay"]["ms_per_iteration"]["epinet"]
        for key, kind in (("admit", ""), ("admit_class_balanced", ", class-balanced eviction")):
            for capacity, timing in d.get(key, {}).items():
                share = "" if step is None else f" ({100 * timing['median'] * 1000 / step:.1f}% of an EpiNet training iteration)"
                row(f"(d) admission of a batch of {d['batch']} into a full memory of {int(capacity):,}{kind}", f"{timing['median'] * 1000:.3f} ms{share}")
        for capacity, timing in d["plugin_iteration"].items():
            share = "" if step is None else f" ({100 * timing['median'] * 1000 / step:.1f}%)"
            row(
                f"(d) EpiNet plugin bookkeeping per iteration (per-sample loss + admission + tick), memory {int(capacity):,}",
                f"{timing['median'] * 1000:.3f} ms{share}",
            )
    if "quick" in m:
        q = m["quick"]
        ok = q["returncode"] == 0 and q["wall_seconds"] <= TARGETS["quick_seconds"]
        row(
            f"(e) `epinet-bench sweep quick.yaml --jobs {q['jobs']}`: wall time ({q['runs']} runs)",
            f"{q['wall_seconds']:.0f} s" + ("" if q["returncode"] == 0 else f" (exit {q['returncode']})") + _run_seconds(q),
            f"≤ {TARGETS['quick_seconds']:.0f} s",
            ok,
        )
        row(
            "(e) peak RSS: largest run / whole sweep process tree",
            f"{_mib(q['peak_rss_bytes_max_run'])} / {_mib(q['peak_rss_bytes_process_tree'])}",
        )
    row("paper.yaml with --jobs 2 (not run by `perf`; time `make paper`)", "not measured", f"≤ {TARGETS['paper_seconds'] / 60:.0f} min")
    return rows


def markdown(results: dict[str, Any]) -> str:
    mc = results["machine"]
    st = results["settings"]
    lines = [
        f"Measured {results['created']} on {mc['cpu']} ({mc['cores']} cores), {mc['platform']}, "
        f"Python {mc['python']}, torch {mc['torch']}, Avalanche {mc['avalanche']}; "
        f"{st['threads']} torch thread(s) per process, medians of {st['repeats']} interleaved repeats; "
        f"load average before/after: {_load(results['load_before'])} / {_load(results['load_after'])}.",
        "",
        "| measurement | result | target | verdict |",
        "|---|---|---|---|",
    ]
    for r in results["table"]:
        lines.append(f"| {r['measurement']} | {r['result']} | {r['target']} | {r['verdict']} |")
    return "\n".join(lines) + "\n"


def _load(load: list[float] | None) -> str:
    return "n/a" if not load else " ".join(f"{v:.2f}" for v in load)


def update_readme(readme: Path, table: str, start: str = "<!-- perf-table:start -->", end: str = "<!-- perf-table:end -->") -> None:
    text = readme.read_text()
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme} has no {start} ... {end} markers to put the perf table between")
    readme.write_text(pattern.sub(lambda _: f"{start}\n{table}{end}", text))


# ---------------------------------------------------------------- entry point


def run_perf(
    *,
    repeats: int = 5,
    data_root: str | None = None,
    threads: int = 1,
    quick: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    from benchmarks.data import load_mnist
    from benchmarks.streams import build_benchmark

    if repeats < 1:
        raise ValueError(f"--repeats must be at least 1 (got {repeats})")
    if threads < 1:
        raise ValueError(f"--threads must be at least 1 (got {threads})")
    torch.set_num_threads(threads)
    data = load_mnist(data_root)
    bench = build_benchmark("split-mnist", data, seed=0)
    results: dict[str, Any] = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {"repeats": repeats, "threads": threads, "data_root": str(data.root), "targets": TARGETS},
        "load_before": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "measurements": {},
    }
    m = results["measurements"]
    steps = [
        ("harness", "(a) harness vs plain loop", lambda: measure_harness(bench, repeats)),
        ("epinet_vs_replay", "(b) EpiNet vs replay, per experience", lambda: measure_epinet_vs_replay(bench, repeats)),
        ("bare_steps", "(b) bare training steps", lambda: measure_bare_steps(bench, repeats)),
        ("recall", "(c) recall latency", lambda: measure_recall(repeats, thread_counts=sorted({threads, os.cpu_count() or 1}))),
        ("admission", "(d) admission cost", lambda: measure_admission(bench, repeats)),
    ]
    if quick:
        steps.append(("quick", "(e) quick.yaml sweep, --jobs 2 (a few minutes)", lambda: measure_quick(str(data.root))))
    for key, label, fn in steps:
        log(f"perf: {label} ...")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Avalanche's @deprecated re-arms its own filter on every call: drop what it shows.
            warnings.showwarning = lambda *args, **kwargs: None
            m[key] = fn()
        log(f"perf: {label} done in {time.perf_counter() - start:.0f} s")
        torch.set_num_threads(threads)
    results["load_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    results["table"] = table_rows(results)
    return results


def write_results(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "perf.json", out / "perf.md"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path
