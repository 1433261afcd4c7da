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


def _sampler_batches(n: int, batch_size: int) -> Iterator[torch.Tensor]:
    """Index batches of one pass of ``BatchSampler(RandomSampler(range(n)))``, drawing the
    sampler's seed from the global RNG lazily, at the first batch, as ``RandomSampler`` does."""
    seed = int(torch.empty((), dtype=torch.int64).random_().item())
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


class TensorReplayBatches:
    """Current-data minibatches each concatenated with a minibatch drawn from a replay buffer.

    Avalanche's ``ReplayDataLoader`` (without task balancing) reproduced on tensors, random
    stream included, so both paths train on the same batches: one draw for the iterator's base
    seed; the current data in one shuffled pass of ``batch_size`` (its length is the epoch's);
    the buffer in shuffled passes of ``batch_size_mem``, the last batch of a pass being the
    remainder, each new pass drawing its sampler seed when its first batch is needed. Every
    step holds the current samples followed by the buffer samples.
    """

    def __init__(
        self, data: tuple[torch.Tensor, ...], memory: tuple[torch.Tensor, ...], batch_size: int, batch_size_mem: int
    ):
        self.data, self.memory = data, memory
        self.batch_size, self.batch_size_mem = batch_size, batch_size_mem
        self.n, self.n_mem = len(data[0]), len(memory[0])

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        torch.empty((), dtype=torch.int64).random_()  # DataLoader iterator's base seed
        memory_batches: Iterator[torch.Tensor] = iter(())
        for idx in _sampler_batches(self.n, self.batch_size):
            mem_idx = next(memory_batches, None)
            if mem_idx is None:  # buffer pass exhausted: a new sampler pass, as Avalanche does
                memory_batches = _sampler_batches(self.n_mem, self.batch_size_mem)
                mem_idx = next(memory_batches)
            yield [torch.cat([d[idx], m[mem_idx]]) for d, m in zip(self.data, self.memory)]


def dataset_tensors(dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Materialise a (small) Avalanche dataset, such as a replay buffer, as ``(x, y, t)``."""
    # A private generator: the loader's base-seed draw must not consume the global RNG
    # (the stock path never iterates the buffer here).
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=max(1, len(dataset)), collate_fn=dataset.collate_fn, generator=torch.Generator()
    )
    x, y, *rest = next(iter(loader))
    return x, torch.as_tensor(y), torch.as_tensor(rest[-1])


class TensorView(torch.utils.data.Dataset):
    """Tensors as a dataset that ``DataLoader`` fetches a whole batch at a time.

    For plugins that build their own ``DataLoader`` over an experience (e.g. EWC's Fisher
    pass): ``__getitems__`` turns each batch into one index gather.
    """

    def __init__(self, tensors: tuple[torch.Tensor, ...]):
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, i):
        return [t[i] for t in self.tensors]

    def __getitems__(self, indices) -> Batch:
        idx = torch.as_tensor(indices)
        return [t[idx] for t in self.tensors]

    @staticmethod
    def collate_fn(batch: Batch) -> Batch:
        return batch
