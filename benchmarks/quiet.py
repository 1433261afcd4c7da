"""The one place the harness silences library warnings that say nothing about a user's run."""

from __future__ import annotations

import warnings


def quiet_library_warnings() -> None:
    # Avalanche's deprecation notices (re-armed by its @deprecated on every call), qpsolvers'
    # "no QP solver found" at import and Avalanche's "No loggers specified" for our silent
    # evaluator: none concerns the user's configuration.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message="no QP solver found")
    warnings.filterwarnings("ignore", message="No loggers specified")
