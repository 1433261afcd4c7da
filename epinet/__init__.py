"""EpiNet: continual learning with salience-driven episodic memory and recall.

Plain PyTorch. The names below are loaded on first use, so ``import epinet`` (and
``import epinet.config``) imports neither torch nor Avalanche: validating a configuration
stays fast. The Avalanche adapter lives in ``epinet.plugin`` and is not exported here.
"""

from __future__ import annotations

import importlib
from typing import Any

# Exported name -> the module that defines it.
_EXPORTS = {
    "BACKBONES": "epinet.backbones",
    "make_backbone": "epinet.backbones",
    "EpiNetConfig": "epinet.config",
    "MixtureOfExpertsDecoder": "epinet.decoder",
    "EpisodicMemory": "epinet.memory",
    "class_balanced_top": "epinet.strata",
    "stratum_keys": "epinet.strata",
    "EpiNetModel": "epinet.model",
    "RecallEngine": "epinet.recall",
    "Clock": "epinet.salience",
    "LogicalClock": "epinet.salience",
    "WallClock": "epinet.salience",
    "decayed_salience": "epinet.salience",
    "make_clock": "epinet.salience",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'epinet' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
