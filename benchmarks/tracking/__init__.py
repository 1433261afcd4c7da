"""Experiment tracking: ``--log csv|tensorboard|mlflow|wandb`` for ``run`` and ``sweep`` (repeatable).

What is logged, per run: the training loss every ``LOSS_EVERY`` iterations, the accuracy-matrix
row after each training experience, the final metrics (memory_bytes among them) and the resolved
config (params / hparams). Where it goes, under the results directory by default:

* ``csv``          ``logs/<benchmark>/<strategy>/<hash>/seed<N>.csv``, one line per value logged
* ``tensorboard``  ``tensorboard/<benchmark>/<strategy>/<hash>/seed<N>/`` event files (torch's SummaryWriter)
* ``mlflow``       a local file store ``mlruns/`` (or ``--tracking-uri``): one MLflow run per harness run,
                   tagged with config hash, seed and code version, in an experiment named after the sweep
* ``wandb``        offline runs under ``wandb/`` (``wandb sync`` uploads them later); project: the sweep's name

Tracking is outside the run's config: it never changes a config hash or a stored result. This
module stays light (no torch): the CLI checks the flags and the optional packages with it before
any data is read, and a missing package is one line naming the extra to install.
"""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from benchmarks import extras

BACKENDS = ("csv", "tensorboard", "mlflow", "wandb")
# backend -> (module that must be importable, extra of epinet-bench that installs it)
PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb")}
LOSS_EVERY = 50  # training iterations between two logged losses: one host sync each, and few points


@dataclass(frozen=True)
class Tracking:
    """Where and how a run logs; picklable, so a sweep hands it to its worker processes."""

    backends: tuple[str, ...]
    results_dir: Path
    experiment: str  # the sweep's name (MLflow experiment, W&B project); "adhoc" for `epinet-bench run`
    tracking_uri: str | None = None  # MLflow: a server or store; default the file store results_dir/mlruns
    loss_every: int = LOSS_EVERY


def add_tracking_flags(parser: argparse.ArgumentParser) -> None:
    """``--log`` and ``--tracking-uri``, the same for ``run`` and ``sweep``."""
    parser.add_argument(
        "--log",
        action="append",
        choices=BACKENDS,
        default=None,
        metavar="{" + ",".join(BACKENDS) + "}",
        help="also stream each run's loss, accuracy-matrix rows, final metrics and config to this tracker"
        " (repeatable; off by default). Optional packages: pip install epinet-bench[tensorboard|mlflow|wandb]",
    )
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow tracking URI for --log mlflow (default: the local file store RESULTS/mlruns)",
    )


def installed(backend: str) -> bool:
    """Whether ``backend``'s client library can be imported (csv needs none)."""
    return backend not in PACKAGES or importlib.util.find_spec(PACKAGES[backend][0]) is not None


def check_installed(backends) -> None:
    """ValueError, one line naming the extra, for the first backend whose package is missing."""
    for backend in backends:
        if backend in PACKAGES:
            module, extra = PACKAGES[backend]
            extras.require(module, extra, f"--log {backend}")


def missing(backend: str) -> str:
    """What a backend whose package is missing lacks, and the extra that installs it."""
    return extras.missing(*PACKAGES[backend])


def tracking_from(args, results_dir: Path, experiment: str) -> Tracking | None:
    """The ``Tracking`` the flags ask for (None: no ``--log``); bad combinations and missing packages
    raise ValueError before anything runs."""
    backends = tuple(dict.fromkeys(args.log or ()))  # repeated names once, in the order given
    if args.tracking_uri and "mlflow" not in backends:
        raise ValueError("--tracking-uri applies to --log mlflow only")
    if not backends:
        return None
    check_installed(backends)
    return Tracking(backends, Path(results_dir), experiment, args.tracking_uri)
