"""Continual-learning streams built once from pre-loaded, normalised MNIST tensors.

Every stream is an Avalanche ``CLScenario`` with ``train_stream``, ``valid_stream`` and
``test_stream``, so any Avalanche strategy runs on it unchanged.  Each experience also
carries its tensors (``experience.tensors = (x, y, t)``) so that the harness's strategy
template can gather minibatches by indexing instead of per-sample ``__getitem__``.

Scenarios
---------
``split-mnist``       class-incremental: one head over 10 classes, no task label at test time.
``split-mnist-task``  task-incremental: the task label is given at train and test time; the
                      harness masks the logits to the task's classes.
``permuted-mnist``    domain-incremental: every experience (the first one included) applies its
                      own fixed pixel permutation, drawn from the seed; all 10 classes each time.
``rotated-mnist``     domain-incremental: every experience rotates the images by its own angle
                      (``benchmarks.rotation``).
``split-mnist-blurry`` task-free: split-mnist's experiences with blurred boundaries
                      (``benchmarks.blurry``); no boundary reaches the strategy.

Validation: ``valid_fraction`` of each training experience (default 10%, drawn from the seed)
is held out in ``valid_stream`` and never trained on; hyperparameters are chosen on it, never
on ``test_stream``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import torch
from avalanche.benchmarks.scenarios.dataset_scenario import DatasetExperience
from avalanche.benchmarks.scenarios.generic_scenario import CLScenario, EagerCLStream
from avalanche.benchmarks.utils.classification_dataset import _make_taskaware_tensor_classification_dataset

from benchmarks.data import MNIST, N_CLASSES, unit_scaled
from benchmarks.scenarios import get_scenario


class TensorExperience(DatasetExperience):
    """An Avalanche experience that also exposes its data as tensors ``(x, y, t)``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor):
        dataset = _make_taskaware_tensor_classification_dataset(x, y, task_labels=t, targets=y)
        super().__init__(dataset=dataset)
        self.tensors = (x, y, t)
        self.classes_in_this_experience = sorted(set(y.tolist()))

    def __len__(self) -> int:
        return len(self.tensors[1])


@dataclass
class Benchmark:
    """A scenario plus what the harness needs to know about it."""

    name: str
    scenario: CLScenario
    n_classes: int
    class_masks: torch.Tensor | None = None  # [n_tasks, n_classes] bool, task-incremental only
    meta: dict = field(default_factory=dict)

    @property
    def train_stream(self):
        return self.scenario.train_stream

    @property
    def valid_stream(self):
        return self.scenario.valid_stream

    @property
    def test_stream(self):
        return self.scenario.test_stream

    @property
    def n_experiences(self) -> int:
        return len(self.scenario.train_stream)

    def joint_experience(self) -> TensorExperience:
        """All training experiences concatenated: the joint-training upper bound trains on this."""
        parts = [exp.tensors for exp in self.train_stream]
        joint = TensorExperience(*(torch.cat(p) for p in zip(*parts)))
        EagerCLStream("train_joint", [joint])  # Avalanche requires every experience to belong to a stream
        return joint


def _holdout(
    n: int, fraction: float, generator: torch.Generator, train_limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices 0..n-1 into (train, valid) with a seeded permutation; optionally keep
    only ``train_limit`` of the training indices (the validation part is unaffected)."""
    order = torch.randperm(n, generator=generator)
    n_valid = int(round(n * fraction))
    train = order[n_valid:]
    if train_limit is not None and train_limit < len(train):
        train = train[:train_limit]  # a prefix of a random permutation: a uniform subset
    return train.sort().values, order[:n_valid].sort().values


def _scenario(train, valid, test) -> CLScenario:
    return CLScenario(
        [
            EagerCLStream("train", [TensorExperience(*p) for p in train]),
            EagerCLStream("valid", [TensorExperience(*p) for p in valid]),
            EagerCLStream("test", [TensorExperience(*p) for p in test]),
        ]
    )


def split_mnist(
    data: MNIST,
    *,
    seed: int = 0,
    n_experiences: int = 5,
    task_labels: bool = False,
    valid_fraction: float = 0.1,
    train_per_experience: int | None = None,
) -> Benchmark:
    """Split-MNIST: classes 0..9 in fixed order, ``10 / n_experiences`` classes per experience."""
    if n_experiences < 1 or N_CLASSES % n_experiences:
        raise ValueError(f"n_experiences must divide {N_CLASSES} (got {n_experiences}); use 1, 2, 5 or 10")
    generator = torch.Generator().manual_seed(seed)
    per_exp = N_CLASSES // n_experiences
    train, valid, test = [], [], []
    masks = torch.zeros(n_experiences, N_CLASSES, dtype=torch.bool)
    for i in range(n_experiences):
        classes = torch.arange(i * per_exp, (i + 1) * per_exp)
        masks[i, classes] = True
        task = i if task_labels else 0
        for x, y, out in ((data.train_x, data.train_y, None), (data.test_x, data.test_y, test)):
            idx = torch.isin(y, classes).nonzero().squeeze(1)
            t = torch.full((len(idx),), task, dtype=torch.long)
            if out is None:
                keep, held = _holdout(len(idx), valid_fraction, generator, train_per_experience)
                train.append((x[idx[keep]], y[idx[keep]], t[keep]))
                valid.append((x[idx[held]], y[idx[held]], t[held]))
            else:
                out.append((x[idx], y[idx], t))
    name = "split-mnist-task" if task_labels else "split-mnist"
    return Benchmark(
        name,
        _scenario(train, valid, test),
        N_CLASSES,
        class_masks=masks if task_labels else None,
        meta={"classes_per_experience": [list(range(i * per_exp, (i + 1) * per_exp)) for i in range(n_experiences)]},
    )


def permuted_mnist(
    data: MNIST,
    *,
    seed: int = 0,
    n_experiences: int = 10,
    valid_fraction: float = 0.1,
    train_per_experience: int | None = None,
) -> Benchmark:
    """Permuted-MNIST: each experience permutes the 784 pixels with its own seeded permutation."""
    if n_experiences < 1:
        raise ValueError(f"n_experiences must be positive (got {n_experiences})")
    generator = torch.Generator().manual_seed(seed)
    streams: tuple[list, list, list] = ([], [], [])
    n_pixels = data.train_x[0].numel()
    for _ in range(n_experiences):
        perm = torch.randperm(n_pixels, generator=generator)
        # One gather picks the rows and permutes the pixels without an intermediate copy.
        append_domain_experience(
            streams,
            data,
            _holdout(len(data.train_y), valid_fraction, generator, train_per_experience),
            lambda x, rows, perm=perm: x.flatten(1)[rows[:, None], perm[None, :]].view(len(rows), *x.shape[1:]),
        )
    return Benchmark("permuted-mnist", _scenario(*streams), N_CLASSES)


def append_domain_experience(streams: tuple[list, list, list], data: MNIST, holdout, transform) -> None:
    """Append one domain-incremental experience, all ten classes, task label 0, to the (train,
    valid, test) lists: ``transform(images, rows)`` gives the chosen ``rows`` of ``images``,
    transformed (the kept and held-out training rows of ``holdout``, then the whole test set)."""
    keep, held = holdout
    for (x, y, rows), out in zip(
        (
            (data.train_x, data.train_y, keep),
            (data.train_x, data.train_y, held),
            (data.test_x, data.test_y, torch.arange(len(data.test_y))),
        ),
        streams,
    ):
        out.append((transform(x, rows), y[rows], torch.zeros(len(rows), dtype=torch.long)))


def build_benchmark(
    name: str,
    data: MNIST,
    *,
    seed: int,
    n_experiences: int | None = None,
    valid_fraction: float = 0.1,
    train_per_experience: int | None = None,
    input_scale: str = "standard",
    blur: float | None = None,
) -> Benchmark:
    """Build a benchmark by name. Uses its own RNG: the global torch RNG is left untouched.

    ``train_per_experience`` keeps a seeded random subset of that many training samples in
    each experience (after the validation hold-out); None keeps them all. ``input_scale``
    "unit" gives pixels in [0, 1] instead of standardised ones. ``blur`` is a blurry scenario's
    share of foreign samples per experience (None: the scenario's default).
    """
    scenario = get_scenario(name)
    module, _, function = scenario.builder.rpartition(":")
    builder = getattr(importlib.import_module(f"benchmarks.{module}"), function) if module else globals()[function]
    options = dict(scenario.builder_options)
    if scenario.default_blur is not None:
        options["blur"] = scenario.default_blur if blur is None else blur
    elif blur is not None:
        raise ValueError(f"{name} has no blurred boundaries: blur applies to a blurry benchmark only")
    return builder(
        unit_scaled(data) if input_scale == "unit" else data,
        seed=seed,
        n_experiences=scenario.experiences(n_experiences),
        valid_fraction=valid_fraction,
        train_per_experience=train_per_experience,
        **options,
    )
