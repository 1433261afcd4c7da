"""How the harness writes byte counts: decimal units, one formatter for tables and messages."""

from __future__ import annotations

import math
from dataclasses import dataclass


def human_bytes(n: float) -> str:
    """Decimal units: ``1576000`` -> ``1.6 MB``."""
    if n is None or not math.isfinite(n):
        return "—"
    if abs(n) < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000
        if round(abs(n), 1) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}"


@dataclass(frozen=True)
class Bytes:
    """A byte count in a table cell: printed as ``human_bytes`` says (Markdown, LaTeX), while the
    HTML page sorts it by the count itself ("900 kB" before "1.2 MB", which text order reverses)."""

    n: float

    def __str__(self) -> str:
        return human_bytes(self.n)
