"""Process-tree helpers for the tests that signal a real sweep subprocess (Ray, Slurm)."""

from __future__ import annotations

import psutil


def descendants(proc: psutil.Process) -> list[psutil.Process]:
    """Every process below ``proc`` (none once it has gone)."""
    try:
        return proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def command_line(proc: psutil.Process) -> str:
    """``proc``'s command line, or '' for a process that has gone or cannot be read."""
    try:
        return " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""
