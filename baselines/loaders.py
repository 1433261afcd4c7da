"""Minibatches gathered from pre-loaded tensors instead of per-sample ``__getitem__``.

The random stream is consumed exactly as torch's ``DataLoader`` with ``shuffle=True`` does
(one draw for the iterator's base seed, one for the sampler's seed, then ``randperm``), so
the fast path and Avalanche's stock path visit the same samples in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

Batch = list[torch.Tensor]


def _dataloader_permutation(n: int) -> torch.Tensor:
    torch.empty((), dtype=torch.int64).random_()  # DataLoader iterator's base seed
    seed = int(torch.empty((), dtype=torch.int64).random_().item())  # RandomSampler's seed
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


class TensorBatches:
    """Iterate ``[x, y, t]`` minibatches over tensors; an epoch costs one index gather per batch."""

    def __init__(self, tensors: tuple[torch.Tensor, ...], batch_size: int, shuffle: bool):
        self.tensors, self.batch_size, self.shuffle = tensors, batch_size, shuffle
        self.n = len(tensors[0])

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        if self.shuffle:
            order = _dataloader_permutation(self.n)
            for start in range(0, self.n, self.batch_size):
                idx = order[start : start + self.batch_size]
                yield [t[idx] for t in self.tensors]
        else:
            for start in range(0, self.n, self.batch_size):
                yield [t[start : start + self.batch_size] for t in self.tensors]


class TensorReplayBatches:
    """Current-data minibatches each concatenated with a minibatch drawn from a replay buffer.

    Same contract as Avalanche's ``ReplayDataLoader`` without task balancing: the epoch length
    is the current data's, the buffer is reshuffled each time it is exhausted, and every step
    holds ``batch_size`` current samples followed by ``batch_size_mem`` buffer samples.
    """

    def __init__(self, data: tuple[torch.Tensor, ...], memory: tuple[torch.Tensor, ...], batch_size: int, batch_size_mem: int):
        self.data = TensorBatches(data, batch_size, shuffle=True)
        self.memory, self.batch_size_mem = memory, batch_size_mem
        self.n_mem = len(memory[0])

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[Batch]:
        order, pos = torch.randperm(self.n_mem), 0
        for batch in self.data:
            take = []
            need = min(self.batch_size_mem, self.n_mem)
            while need:
                if pos == self.n_mem:
                    order, pos = torch.randperm(self.n_mem), 0
                chunk = order[pos : pos + need]
                take.append(chunk)
                pos += len(chunk)
                need -= len(chunk)
            idx = torch.cat(take)
            yield [torch.cat([b, m[idx]]) for b, m in zip(batch, self.memory)]


def dataset_tensors(dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Materialise a (small) Avalanche dataset, such as a replay buffer, as ``(x, y, t)``."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=max(1, len(dataset)), collate_fn=dataset.collate_fn)
    x, y, *rest = next(iter(loader))
    return x, torch.as_tensor(y), torch.as_tensor(rest[-1])
