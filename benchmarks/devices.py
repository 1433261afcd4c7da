"""``--device auto|cpu|cuda[:N]``: where a run trains, for ``run``, ``sweep`` and ``perf`` alike.

The device is how a run is computed, not what: like the torch thread count it stays out of the
run's config and its hash (results made on a CPU are found by a sweep on a GPU, and the other
way round), and each result records the device it ran on (``provenance.device_info``). CPU is
the default: the committed results and the determinism table were made there, and a GPU is
asked for explicitly (``cuda``), or taken where a run finds one (``auto``).

Parsing is standard library only (the CLI answers bad input before importing torch); whether
a CUDA device exists is asked of torch where the run will happen.
"""

from __future__ import annotations

import argparse
import re

DEFAULT = "cpu"
_SYNTAX = re.compile(r"auto|cpu|cuda(:\d+)?")
HELP = (
    "where runs train: cpu, cuda, cuda:N, or auto (cuda where the run finds a GPU, else cpu);"
    " not part of the config hash, recorded with each result (default: cpu)"
)


def add_device_flag(parser: argparse.ArgumentParser, help_text: str = HELP) -> None:
    parser.add_argument("--device", default=None, metavar="DEVICE", help=help_text)


def parse(text: str | None) -> str:
    """The device as given (default ``cpu``), or ValueError in one line."""
    text = DEFAULT if text is None else text
    if not _SYNTAX.fullmatch(text):
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N (got {text!r})")
    return text


def wants_cuda(device: str) -> bool:
    return device.startswith("cuda")


def resolve(device: str):
    """The ``torch.device`` a run uses here: ``auto`` becomes cuda or cpu; a CUDA device that
    this machine does not have is a ValueError in one line."""
    import torch

    device = parse(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {device}: no CUDA device here (torch.cuda.is_available() is False)")
        index = 0 if resolved.index is None else resolved.index
        if index >= count:
            raise ValueError(f"--device {device}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
        resolved = torch.device("cuda", index)
    return resolved


def synchronize(device) -> None:
    """Wait for the device's queued work (a timer reads the end of the work, not of its launch)."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
