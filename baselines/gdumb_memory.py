"""GDumb's greedy class-balancing sampler and the plugin that retrains from scratch on it.

The sampler (Prabhu et al. 2020, Sec. 3, "Sampler"): samples arrive one at a time; while the
memory has room a sample is stored; once it is full, a sample whose class holds fewer than
``capacity / classes seen`` items replaces a random item of the largest class; otherwise it is
dropped. Memory of ``capacity`` slots of ``(x, y, t)`` tensors.
"""

from __future__ import annotations

import math

import torch
from avalanche.core import SupervisedPlugin

from baselines.loaders import TensorBatches


class GreedyClassBalancedMemory:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self.size = 0
        self.slots: dict[int, list[int]] = {}  # class -> the slots holding it, in order of first sight
        self.tensors: tuple[torch.Tensor, ...] = ()

    def __len__(self) -> int:
        return self.size

    def offer(self, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> None:
        """Offer the samples one at a time, in the order given."""
        if not self.tensors:
            self.tensors = tuple(part.new_zeros((self.capacity, *part.shape[1:])) for part in (x, y, t))
        draws = torch.rand(len(y)).tolist()  # which item of the largest class a sample would replace
        written: dict[int, int] = {}  # slot -> sample; a slot written twice keeps the later sample
        for i, label in enumerate(y.tolist()):
            own = self.slots.setdefault(label, [])
            if self.size < self.capacity:
                slot = self.size
                self.size += 1
            elif len(own) < self.capacity / len(self.slots):
                largest = max(self.slots.values(), key=len)  # never ``own``: it is below the mean
                j = int(draws[i] * len(largest))
                slot, largest[j] = largest[j], largest[-1]
                largest.pop()
            else:
                continue
            own.append(slot)
            written[slot] = i
        if written:
            slots, samples = torch.tensor(list(written)), torch.tensor(list(written.values()))
            for store, part in zip(self.tensors, (x, y, t)):
                store[slots] = part[samples]

    def class_counts(self) -> dict[int, int]:
        return {label: len(slots) for label, slots in self.slots.items()}

    def stored(self) -> tuple[torch.Tensor, ...]:
        return tuple(part[: self.size] for part in self.tensors)

    def nbytes(self) -> int:
        return sum(part[: self.size].element_size() * part[: self.size].numel() for part in self.tensors)


def sgdr_lr(epoch: int, max_lr: float, min_lr: float) -> float:
    """GDumb's schedule (the authors' code and Mammoth): epoch 0 at max_lr / 10 (warm-up), then
    cosine annealing with warm restarts (SGDR, T_0 = 1, T_mult = 2) stepped once per epoch from
    epoch 2 on, i.e. cycles of 1, 2, 4, ... epochs starting at max_lr."""
    if epoch == 0:
        return max_lr / 10
    steps = epoch - 1
    cycle = int(math.log2(steps + 1))  # cycle n spans steps 2^n - 1 .. 2^(n+1) - 2
    position, length = steps - (2**cycle - 1), 2**cycle
    return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * position / length)) / 2


class GDumbPlugin(SupervisedPlugin):
    """Before training on an experience: its samples go through the sampler in a random order
    (the stream's), the model gets back its initial weights and the optimiser loses its state,
    and training runs on the memory instead of the experience."""

    def __init__(self, capacity: int, initial_state: dict[str, torch.Tensor], sgdr: bool, min_lr_ratio: float):
        super().__init__()
        self.memory = GreedyClassBalancedMemory(capacity)
        self.initial_state = initial_state
        self.sgdr, self.min_lr_ratio = sgdr, min_lr_ratio
        self.max_lr: float | None = None

    def before_training_exp(self, strategy, **kwargs):
        x, y, t = strategy.experience.tensors
        order = torch.randperm(len(y))
        self.memory.offer(x[order], y[order], t[order])
        strategy.model.load_state_dict(self.initial_state)
        strategy.optimizer.state.clear()
        if self.max_lr is None:
            self.max_lr = strategy.optimizer.param_groups[0]["lr"]
        stored = tuple(part.to(strategy.device) for part in self.memory.stored())
        strategy.dataloader = TensorBatches(stored, strategy.train_mb_size, shuffle=True)

    def before_training_epoch(self, strategy, **kwargs):
        epoch = strategy.clock.train_exp_epochs
        lr = sgdr_lr(epoch, self.max_lr, self.max_lr * self.min_lr_ratio) if self.sgdr else self.max_lr
        for group in strategy.optimizer.param_groups:
            group["lr"] = lr
