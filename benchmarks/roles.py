"""What an experiment of a sweep is for, as the report reads it (its role).

* ``main``      every strategy on every benchmark: the main table and figures
* ``ablation``  variants of one strategy, each against that strategy's main-role runs
* ``memory``    runs at other memory budgets, with the main-role runs at the default budget
* ``tuning``    validation runs from which hyperparameters are selected
* ``reproduction`` runs of a published table, set beside the published numbers
                (``benchmarks/configs/published/<experiment>.csv``)

Sweeps declare a role per experiment; an experiment (or a stored run) that declares none takes
the role named like it (``role_named_like``), so sweeps and results written before roles
existed keep meaning what they meant. Kept free of heavy imports: both the config (torch side)
and the report (pandas side) read it.
"""

from __future__ import annotations

from typing import Literal

Role = Literal["main", "ablation", "memory", "tuning", "reproduction"]
ROLES: tuple[str, ...] = ("main", "ablation", "memory", "tuning", "reproduction")


def role_named_like(experiment: str) -> str:
    """The role of an experiment that declares none: its own name if that is a role, ``tuning``
    for the ``tune*`` names tuning experiments always had, else ``main``."""
    if experiment in ROLES:
        return experiment
    if experiment.startswith("tune"):
        return "tuning"
    return "main"
