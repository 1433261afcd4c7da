"""Run results on disk: one JSON per run, written atomically, trusted only if it re-derives.

Layout: ``<results>/runs/<benchmark>/<strategy>/<config-hash>/seed<N>.json``. Reading a result
checks everything that can be checked from the file alone: the schema version, the stored
config against its hash (and against today's validation), the accuracy matrix's shape against
the config, and every metric recomputed from the matrix. A sweep reuses a result that passes;
one that fails is reported, moved aside (kept, never overwritten) and rerun.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from benchmarks import metrics
from benchmarks.config import ConfigError, RunConfig, error_lines, make_run_config
from benchmarks.scenarios import get_scenario

SCHEMA_VERSION = 1
DERIVED_METRICS = ("final_accuracy", "average_forgetting", "backward_transfer", "learning_accuracy")


class CorruptResult(ValueError):
    pass


class RunMetrics(BaseModel):
    model_config = ConfigDict(extra="allow")

    final_accuracy: float
    average_forgetting: float | None
    backward_transfer: float | None
    learning_accuracy: float | None
    train_seconds: float
    eval_seconds: float
    peak_rss_bytes: int
    parameter_count: int
    memory_bytes: int


class RunResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    schema_version: int
    config: dict[str, Any]
    config_hash: str
    metrics: RunMetrics
    accuracy_matrix: list[list[float]]
    experience_seconds: list[float]
    versions: dict[str, str]
    git_commit: str | None
    git_dirty: bool | None = None  # absent in results written before it was recorded
    machine: dict[str, Any] | None = None  # cpu, cores, torch_threads (idem)
    device: dict[str, Any] | None = None  # type and name of the device it trained on (idem)
    created: str


def result_path(results_dir: Path, config) -> Path:
    return (
        Path(results_dir)
        / "runs"
        / config.benchmark
        / config.strategy
        / config.config_hash()
        / f"seed{config.seed}.json"
    )


def _temp_prefix(path: Path, pid: int) -> str:
    # The writer's pid in the name lets a later sweep tell a dead writer's leftover (SIGKILL)
    # from a live one's file in flight.
    return f".{path.name}.{pid}."


def write_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path, os.getpid()), suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def rederive(result: RunResult) -> str | None:
    """What is wrong with a parsed result, judged against its own config; None if nothing.

    A strategy that is not installed here (a plug-in) cannot validate its options or say
    whether it trains jointly: its config is then checked against its hash only, and a
    single-row matrix is read as a joint run."""
    from baselines.registry import UnknownStrategy, get_strategy

    try:
        spec = get_strategy(str(result.config.get("strategy")))
    except UnknownStrategy:
        spec = None
    try:
        if spec is None:
            make_run_config(
                "stored config", **{**result.config, "strategy": "naive", "strategy_options": {}}
            )  # the rest validates
            config = RunConfig.model_construct(**result.config)
        else:
            config = make_run_config("stored config", **result.config)
    except ConfigError as err:
        return str(err).replace("\n", "; ")
    if config.config_hash() != result.config_hash:
        return (
            f"config hash {result.config_hash!r} does not match its config (which hashes to {config.config_hash()!r})"
        )
    joint = spec.joint if spec is not None else len(result.accuracy_matrix) == 1
    n_exp = get_scenario(config.benchmark).experiences(config.n_experiences)
    matrix = result.accuracy_matrix
    rows, cols = len(matrix), len(matrix[0]) if matrix else 0
    expected_rows = 1 if joint else n_exp
    if rows != expected_rows or any(len(row) != n_exp for row in matrix):
        shape = f"{rows}x{cols}" if all(len(row) == cols for row in matrix) else f"{rows} ragged rows"
        return f"accuracy matrix is {shape}, its config needs {expected_rows}x{n_exp}"
    derived = metrics.summarise(matrix, joint=joint)
    for name in DERIVED_METRICS:
        stored = getattr(result.metrics, name)
        if not _same(stored, derived[name]):
            return f"{name} is {stored}, but its accuracy matrix gives {derived[name]}"
    return None


def read_result(path: Path) -> RunResult:
    """Read one run JSON and check it re-derives; CorruptResult says why it cannot be trusted."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptResult(f"{path}: unreadable JSON ({err})") from None
    if not isinstance(raw, dict):
        raise CorruptResult(f"{path}: not a JSON object")
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise CorruptResult(
            f"{path}: schema version {raw.get('schema_version')!r}, this harness reads {SCHEMA_VERSION}"
        )
    try:
        result = RunResult.model_validate(raw)
    except ValidationError as err:
        raise CorruptResult(f"{path}: {error_lines(err)[0]}") from None
    if not result.accuracy_matrix:
        raise CorruptResult(f"{path}: accuracy matrix is empty")
    problem = rederive(result)
    if problem:
        raise CorruptResult(f"{path}: {problem}")
    return result


def valid_result_for(path: Path, config: RunConfig) -> tuple[RunResult | None, str | None]:
    """(result, None) if a trustworthy result for ``config`` exists; (None, reason) if it must be rerun."""
    if not path.exists():
        return None, None
    try:
        result = read_result(path)
    except CorruptResult as err:
        return None, str(err)
    if result.config_hash != config.config_hash() or result.config.get("seed") != config.seed:
        return None, f"{path}: belongs to another configuration"
    return result, None


def move_aside(path: Path, why: str) -> Path:
    """Rename a result that will be rerun to ``<name>.<why>-<UTC time>``: kept, never overwritten."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.{why}-{stamp}")
    os.replace(path, target)
    return target


def remove_dead_writers_files(results_dir: Path) -> list[Path]:
    """Delete temporary files whose writer process no longer exists (a SIGKILLed run)."""
    removed = []
    for tmp in Path(results_dir).rglob(".seed*.json.*.tmp"):
        parts = tmp.name.split(".")  # ['', 'seed0', 'json', '<pid>', '<random>', 'tmp']
        pid = int(parts[3]) if len(parts) > 4 and parts[3].isdigit() else None
        if pid is not None and _alive(pid):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_writable(results_dir: Path) -> None:
    """Fail before training if results cannot be written."""
    results_dir = Path(results_dir)
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=results_dir, prefix=".write-check-"):
            pass
    except OSError as err:
        raise PermissionError(f"results directory {results_dir} is not writable: {err.strerror or err}") from None


def iter_results(results_dir: Path):
    """Yield (path, RunResult | CorruptResult) for every run JSON under ``results_dir``."""
    root = Path(results_dir)
    runs = root / "runs" if (root / "runs").is_dir() else root
    for path in sorted(runs.rglob("seed*.json")):
        try:
            yield path, read_result(path)
        except CorruptResult as err:
            yield path, err
