"""Salience decay and the clocks that define "now".

The notebook's ``MemoryController.decay`` computes

    salience_m = r0_m * exp(-alpha * (tau_now - tau_m))

with tau measured by ``time.time()``. Wall time makes runs irreproducible and
depends on machine speed, so the default clock here counts training
iterations instead; ``alpha`` is always expressed per unit of whichever clock
is in use (per iteration, or per second for :class:`WallClock`).
"""

from __future__ import annotations

import time

import torch
from torch import Tensor, nn

# Timestamps are kept in float64: wall-clock seconds (~1.7e9) have a float32
# resolution of ~128 s, which is what made the notebook print age 0 for
# memories stored 10 s and 20 s ago.
TIME_DTYPE = torch.float64


def decayed_salience(r0: Tensor, tau: Tensor, now: Tensor | float, alpha: float) -> Tensor:
    """Notebook ``MemoryController.decay``: ``r0 * exp(-alpha * (now - tau))``.

    Args:
        r0: initial salience of each memory, shape [M].
        tau: storage time of each memory in clock units, shape [M].
        now: current clock reading (scalar or 0-dim tensor).
        alpha: decay rate per clock unit; ``alpha == 0`` disables decay.

    Returns:
        Decayed salience, shape [M], in ``r0``'s dtype.
    """
    age = now - tau.to(TIME_DTYPE)
    return r0 * torch.exp(-alpha * age).to(r0.dtype)


class Clock(nn.Module):
    """Counts training iterations; subclasses decide what ``now()`` reads.

    The tick count is a registered buffer so it travels with ``state_dict``
    and can drive iteration-based schedules whichever clock is used.
    """

    ticks: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("ticks", torch.zeros((), dtype=torch.long))

    def tick(self) -> None:
        """Advance by one training iteration."""
        self.ticks += 1

    def now(self) -> Tensor | float:
        raise NotImplementedError


class LogicalClock(Clock):
    """Time = number of training iterations seen (the reproducible default)."""

    def now(self) -> Tensor:
        # A tensor rather than ``.item()``: no host-device sync per forward.
        return self.ticks.to(TIME_DTYPE)


class WallClock(Clock):
    """Time = ``time.time()`` seconds, as in the notebook (not reproducible)."""

    def now(self) -> float:
        return time.time()


def make_clock(name: str) -> Clock:
    """Build a clock by config name: ``"logical"`` or ``"wall"``."""
    clocks = {"logical": LogicalClock, "wall": WallClock}
    if name not in clocks:
        raise ValueError(f"unknown clock {name!r}; known: {', '.join(sorted(clocks))}")
    return clocks[name]()
