"""Where a number came from: package versions, the machine, the device, torch threads and the code version.

Every run record and ``perf.json`` take their provenance from here (one collector), so a
result can be traced to the code, the CPU and the thread count that produced it.
"""

from __future__ import annotations

import os
import platform
import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("torch", "avalanche-lib", "numpy", "pydantic")


def package_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            found[pkg] = "unknown"
    return found


@cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@cache
def code_version() -> dict[str, str | bool | None]:
    """The git commit of the harness and whether its tracked files differed from it (dirty).

    Cached per process: the code a process runs does not change while it runs."""
    commit = _git("rev-parse", "HEAD") or None
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit, "dirty": None if status is None else bool(status)}


def short_version(commit: str | None, dirty: bool | None) -> str:
    """``7f896ad``, ``7f896ad+dirty`` or ``unknown``: how tables name a code version."""
    if not commit:
        return "unknown"
    return commit[:7] + ("+dirty" if dirty else "")


def machine() -> dict[str, object]:
    """The machine a run or a timing came from (the torch thread count is read when called)."""
    import torch

    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
    }


def device_info(device) -> dict[str, object]:
    """The device a run or a timing used, by name: the GPU's (``torch.cuda.get_device_name``) or
    the CPU model's. For a GPU, also the CUDA version torch was built with and the peak memory
    torch allocated on it (read when called: at the end of a run, the run's peak)."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return {"type": device.type, "name": cpu_model()}
    index = torch.cuda.current_device() if device.index is None else device.index
    return {
        "type": "cuda",
        "index": index,
        "name": torch.cuda.get_device_name(index),
        "cuda": torch.version.cuda,
        "peak_allocated_bytes": torch.cuda.max_memory_allocated(index),
    }
