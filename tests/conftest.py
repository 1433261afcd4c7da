"""Shared fixtures for the harness tests (tests/benchmarks, tests/baselines).

* ``make_data_root``: writes a tiny synthetic MNIST-layout data root (learnable classes) with
  its ``MNIST/SHA256SUMS``; ``synthetic_root`` / ``synthetic_mnist`` are one such root per session.
* ``real_mnist``: the real data set, skipped when the data root is absent.
* ``forbid``: makes a function fail the test if it is called; ``run_argv``: an ``epinet-bench run``
  command line; ``loader_paths``: which data path (fast or stock) each run really took.
* Harness tests run with one torch thread (2 shared cores: extra threads only contend) and
  with torchvision's download disabled, so no test ever touches the network.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

HARNESS_TESTS = (Path(__file__).parent / "benchmarks", Path(__file__).parent / "baselines")
REAL_DATA_ROOT = Path(
    os.environ.get("EPINET_DATA_ROOT") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)
_DEFAULT_THREADS = torch.get_num_threads()


def _is_harness_test(path: Path) -> bool:
    return any(d in Path(path).parents for d in HARNESS_TESTS)


def pytest_runtest_setup(item):
    torch.set_num_threads(1 if _is_harness_test(item.path) else _DEFAULT_THREADS)


@pytest.fixture(autouse=True)
def _offline(request, monkeypatch):
    """Any download attempt fails at once, as on a machine without network."""
    if _is_harness_test(request.node.path):
        import benchmarks.data

        def no_network(root):
            raise OSError("network disabled in tests")

        monkeypatch.setattr(benchmarks.data, "_try_download", no_network)


def write_data_root(
    root: Path, *, train_per_class: int = 30, test_per_class: int = 10, seed: int = 0, sums: bool = True
) -> Path:
    """Synthetic MNIST root: each class is a bright 6x6 block at its own place, over noise."""
    from benchmarks.data import FILES, raw_dir, write_idx

    rng = np.random.default_rng(seed)

    def split(per_class):
        labels = np.repeat(np.arange(10), per_class)
        images = rng.integers(0, 90, (len(labels), 28, 28))
        for i, c in enumerate(labels):
            r, col = divmod(int(c), 4)
            images[i, 2 + 8 * r : 8 + 8 * r, 2 + 6 * col : 8 + 6 * col] += rng.integers(60, 166)
        order = rng.permutation(len(labels))
        return np.clip(images, 0, 255).astype(np.uint8)[order], labels.astype(np.uint8)[order]

    arrays = dict(zip(("train_images", "train_labels"), split(train_per_class), strict=True))
    arrays.update(zip(("test_images", "test_labels"), split(test_per_class), strict=True))
    for key, name in FILES.items():
        write_idx(raw_dir(root) / name, arrays[key])
    if sums:
        lines = [f"{hashlib.sha256((raw_dir(root) / n).read_bytes()).hexdigest()}  {n}" for n in FILES.values()]
        (Path(root) / "MNIST" / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return Path(root)


@pytest.fixture
def make_data_root():
    return write_data_root


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """30 train + 10 test images per class; read-only by convention (copy before corrupting)."""
    return write_data_root(tmp_path_factory.mktemp("synthetic-data"))


@pytest.fixture(scope="session")
def synthetic_mnist(synthetic_root):
    from benchmarks.data import load_mnist

    return load_mnist(synthetic_root, download=False)


@pytest.fixture(scope="session")
def real_mnist():
    from benchmarks.data import FILES, load_mnist, raw_dir

    if not all((raw_dir(REAL_DATA_ROOT) / n).is_file() for n in FILES.values()):
        pytest.skip(
            f"real MNIST not found under {REAL_DATA_ROOT} (set EPINET_DATA_ROOT to a data root holding MNIST/raw/)"
        )
    return load_mnist(REAL_DATA_ROOT, download=False)


@pytest.fixture
def loader_paths(monkeypatch):
    """Which data path each strategy that ``benchmarks.runner`` builds really takes.

    Patches ``runner.strategy_setup`` so every strategy gets one more plugin, which records the
    class of each training and evaluation data loader. The returned function gives, per strategy
    built so far: "fast" (only the harness's tensor loaders), "stock" (none of them), "mixed",
    or "none" (no loader seen). Recording draws nothing from any random stream."""
    from avalanche.core import SupervisedPlugin

    import benchmarks.runner
    from baselines.loaders import TensorBatches, TensorReplayBatches

    runs: list[list[type]] = []

    class LoaderSpy(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.used: list[type] = []
            runs.append(self.used)

        def before_training_exp(self, strategy, **kwargs):  # after the strategy's own plugins: sees replay's loader
            self.used.append(type(strategy.dataloader))

        def before_eval_exp(self, strategy, **kwargs):
            self.used.append(type(strategy.dataloader))

    real = benchmarks.runner.strategy_setup

    def strategy_setup(config, bench, plugins, *args, **kwargs):
        return real(config, bench, [*plugins, LoaderSpy()], *args, **kwargs)

    monkeypatch.setattr(benchmarks.runner, "strategy_setup", strategy_setup)

    def path(used: list[type]) -> str:
        fast = [issubclass(cls, (TensorBatches, TensorReplayBatches)) for cls in used]
        return "none" if not used else "fast" if all(fast) else "stock" if not any(fast) else "mixed"

    return lambda: [path(used) for used in runs]


@pytest.fixture
def forbid(monkeypatch):
    """``forbid(module, name, why)``: any call of ``module.name`` during the test fails it with ``why``."""

    def forbid_(module, name: str, why: str) -> None:
        def never(*args, **kwargs):
            raise AssertionError(why)

        monkeypatch.setattr(module, name, never)

    return forbid_


@pytest.fixture
def run_argv():
    """``run_argv(data_root, results, *extra, strategy=, benchmark=)``: a quiet ``epinet-bench run``
    command line."""

    def argv(data_root, results, *extra, strategy="naive", benchmark="split-mnist") -> list[str]:
        where = ["--data-root", str(data_root), "--results", str(results)]
        return ["run", "--benchmark", benchmark, "--strategy", strategy, *where, "-q", *extra]

    return argv
