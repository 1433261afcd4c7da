"""Optional packages (the extras of ``pip install epinet-bench[...]``): one check for all of them.

A feature that needs an optional package (``--log mlflow``, ``--backend ray``) asks here before
anything runs, so a missing package is one line naming the extra to install, not a traceback
from deep inside a run. Standard library only: the CLI asks before it imports anything heavy.
"""

from __future__ import annotations

import importlib.util


def missing(module: str, extra: str) -> str:
    """What a feature lacks when ``module`` is not installed, and the extra that installs it."""
    return f"the {module} package, which is not installed: pip install epinet-bench[{extra}]"


def require(module: str, extra: str, feature: str) -> None:
    """ValueError, one line naming the extra, if ``module`` cannot be imported."""
    if importlib.util.find_spec(module) is None:
        raise ValueError(f"{feature} needs {missing(module, extra)}")
