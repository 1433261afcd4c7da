"""How the harness writes byte counts: decimal units, one formatter for tables and messages."""

from __future__ import annotations

import math


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
