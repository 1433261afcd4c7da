"""Hand-made run records for the report tests, and the statistics the tests compute by hand.

Shared by the report tests of this folder (``from tests.benchmarks.run_records import ...``).
Each record is one the store accepts: its
metrics re-derive from its accuracy matrix and its hash from its config.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from benchmarks.metrics import summarise
from benchmarks.store import SCHEMA_VERSION, RunResult

MEMORY_BYTES = {"naive": 0, "ewc": 19_136_400, "replay": 1_576_000, "epinet": 2_094_008, "joint": 0, "agem": 512}
N_EXP = 5  # split-mnist splits 10 classes: the number of experiences must divide 10


LEGACY = object()  # a record written before runs carried a role and a reference (no such keys)


def make_record(
    benchmark,
    strategy,
    seed,
    final,
    forgetting=None,
    *,
    experiment="main",
    variant="default",
    memory=500,
    memory_bytes=None,
    n_exp=N_EXP,
    joint=None,
    role=LEGACY,
    reference=None,
    git_commit=None,
) -> dict:
    """A valid run record (store.RunResult) whose accuracy matrix has exactly ``final`` and ``forgetting``."""
    joint = strategy == "joint" if joint is None else joint
    T = n_exp - 1
    if joint:
        matrix = [[final] * n_exp]
    else:
        # rows i < T: a + forgetting on seen experiences, 0 on unseen; last row: a on old ones, b on the newest
        low, high = max((T + 1) * final - T * (1 - forgetting), 0.0), min((T + 1) * final, 1.0)
        b = (low + high) / 2
        a = ((T + 1) * final - b) / T
        matrix = [[(a + forgetting if j <= i else 0.0) for j in range(n_exp)] for i in range(T)] + [[a] * T + [b]]
    config = {
        "benchmark": benchmark,
        "strategy": strategy,
        "seed": seed,
        "epochs": 1,
        "batch_size": 128,
        "eval_batch_size": 1000,
        "lr": 0.001,
        "optimizer": "adam",
        "memory": memory,
        "backbone": "mlp",
        "n_experiences": n_exp,
        "valid_fraction": 0.1,
        "eval_split": "test",
        "fast_data": True,
        "strategy_options": {},
        "experiment": experiment,
        "variant": variant,
        "data_root": None,
    }
    if role is not LEGACY:
        config.update(role=role, reference=reference)
    hashed = {k: v for k, v in config.items() if k not in ("seed", "data_root", "role", "reference")}
    derived = summarise(matrix, joint=joint)  # what the store re-derives; equal to final/forgetting up to rounding
    assert math.isclose(derived["final_accuracy"], final, abs_tol=1e-12)
    assert joint or math.isclose(derived["average_forgetting"], forgetting, abs_tol=1e-12)
    record = {
        "schema_version": SCHEMA_VERSION,
        "config": config,
        "config_hash": hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:12],
        "metrics": {
            **derived,
            "train_seconds": 1.0,
            "eval_seconds": 0.1,
            "peak_rss_bytes": 10**9,
            "parameter_count": 1000,
            "memory_bytes": MEMORY_BYTES.get(strategy, 0) if memory_bytes is None else memory_bytes,
        },
        "accuracy_matrix": matrix,
        "experience_seconds": [0.3] * len(matrix),
        "versions": {"python": "3.11"},
        "git_commit": git_commit,
        "created": "2026-01-01T00:00:00+00:00",
    }
    RunResult.model_validate(record)  # the helper only makes records the harness accepts
    return record


def write_record(results: Path, record: dict) -> Path:
    c = record["config"]
    path = Path(results) / "runs" / c["benchmark"] / c["strategy"] / record["config_hash"] / f"seed{c['seed']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


# (benchmark, strategy) -> (final accuracies, forgetting) per seed
MAIN = {
    ("split-mnist", "naive"): ([0.20, 0.19, 0.21], [0.95, 0.97, 0.96]),
    ("split-mnist", "ewc"): ([0.84, 0.85, 0.87], [0.20, 0.22, 0.21]),
    ("split-mnist", "replay"): ([0.80, 0.82, 0.81], [0.15, 0.13, 0.14]),
    ("split-mnist", "epinet"): ([0.90, 0.91, 0.92], [0.10, 0.08, 0.12]),
    ("split-mnist", "joint"): ([0.97, 0.98, 0.96], [None] * 3),
    ("split-mnist", "agem"): ([0.79, 0.83, 0.84], [0.30, 0.40, 0.35]),
    ("permuted-mnist", "naive"): ([0.60, 0.62], [0.30, 0.32]),
    ("permuted-mnist", "ewc"): ([0.70, 0.72], [0.10, 0.12]),
    ("permuted-mnist", "replay"): ([0.72, 0.70], [0.08, 0.10]),
    ("permuted-mnist", "epinet"): ([0.65, 0.67], [0.20, 0.22]),
    ("permuted-mnist", "joint"): ([0.90, 0.92], [None] * 2),
}
ABLATION = {
    "no-recall": ([0.80, 0.82, 0.81], [0.30, 0.32, 0.31]),
    "no-decay": ([0.88, 0.90], [0.12, 0.14]),
    "aaa-extra": ([0.85], [0.2]),
}
MEMORY = {
    ("replay", 100): [0.50, 0.54],
    ("replay", 1000): [0.88, 0.90],
    ("epinet", 100): [0.60, 0.64],
    ("epinet", 1000): [0.93, 0.95],
}


def write_dataset(results: Path, main=True, ablation=True, memory=True, strategies=None) -> Path:
    """The runs above under ``results``; ``strategies`` limits the main experiment to those."""
    if main:
        for (bench, strategy), (accs, forgs) in MAIN.items():
            if strategies is not None and strategy not in strategies:
                continue
            for seed, (acc, forg) in enumerate(zip(accs, forgs)):
                write_record(results, make_record(bench, strategy, seed, acc, forg))
    if ablation:
        for variant, (accs, forgs) in ABLATION.items():
            for seed, (acc, forg) in enumerate(zip(accs, forgs)):
                write_record(
                    results,
                    make_record("split-mnist", "epinet", seed, acc, forg, experiment="ablation", variant=variant),
                )
    if memory:
        for (strategy, size), accs in MEMORY.items():
            for seed, acc in enumerate(accs):
                write_record(
                    results,
                    make_record(
                        "split-mnist",
                        strategy,
                        seed,
                        acc,
                        0.1,
                        experiment="memory",
                        memory=size,
                        memory_bytes=size * 3136,
                    ),
                )
    return results


# ----------------------------------------------------------------------------- hand statistics


def mean(xs):
    return sum(xs) / len(xs)


def sd(xs):  # sample standard deviation, ddof = 1 (what pandas' std computes)
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def welch_by_hand(a, b):
    va, vb = sd(a) ** 2 / len(a), sd(b) ** 2 / len(b)
    t = (mean(a) - mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    # two-sided p = 1 - 2 * integral_0^|t| of Student's t density (Simpson's rule)
    c = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
    f = lambda x: c * (1 + x * x / df) ** (-(df + 1) / 2)  # noqa: E731
    n, h = 20000, abs(t) / 20000
    area = h / 3 * (f(0) + f(abs(t)) + sum((4 if k % 2 else 2) * f(k * h) for k in range(1, n)))
    return t, df, 1 - 2 * area


def stars(p):
    return "\\*\\*" if p < 0.01 else "\\*" if p < 0.05 else ""


def cell(xs, bold=False, mark=""):
    text = f"{mean(xs):.3f} ± {sd(xs):.3f}" if len(xs) > 1 else f"{mean(xs):.3f}"
    return (f"**{text}**" if bold else text) + mark


def md_table(text: str) -> dict[str, dict[str, str]]:
    """First Markdown table of ``text`` as {first cell: {header: cell}}."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    split = lambda line: [c.strip() for c in line.strip().strip("|").split(" | ")]  # noqa: E731
    header = split(lines[0])
    return {row[0]: dict(zip(header, row)) for row in map(split, lines[2:])}
