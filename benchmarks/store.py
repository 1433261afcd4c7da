"""Run results on disk: one JSON per run, written atomically, validated when read back.

Layout: ``<results>/runs/<benchmark>/<strategy>/<config-hash>/seed<N>.json``. A sweep skips a
run whose file exists and validates; a corrupt or partial file is reported and rerun.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

SCHEMA_VERSION = 1


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
    created: str


def result_path(results_dir: Path, config) -> Path:
    return Path(results_dir) / "runs" / config.benchmark / config.strategy / config.config_hash() / f"seed{config.seed}.json"


def write_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_result(path: Path) -> RunResult:
    """Read and validate one run JSON; CorruptResult says why it cannot be trusted."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptResult(f"{path}: unreadable JSON ({err})") from None
    if not isinstance(raw, dict):
        raise CorruptResult(f"{path}: not a JSON object")
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise CorruptResult(f"{path}: schema version {raw.get('schema_version')!r}, this harness reads {SCHEMA_VERSION}")
    try:
        result = RunResult.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        raise CorruptResult(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    n_exp = len(result.accuracy_matrix[0]) if result.accuracy_matrix else 0
    if not result.accuracy_matrix or any(len(row) != n_exp for row in result.accuracy_matrix):
        raise CorruptResult(f"{path}: accuracy matrix is empty or ragged")
    return result


def valid_result_for(path: Path, config) -> tuple[RunResult | None, str | None]:
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
