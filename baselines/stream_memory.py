"""A reservoir memory filled from the stream of training minibatches, kept in tensors, and the
plugin base of the methods that replay it (ER, ER-ACE, DER, DER++, MIR).

Reservoir sampling (Vitter's algorithm R), as in ER (Chaudhry et al., 2019) and DER (Buzzega
et al., 2020): the n-th sample seen takes a uniformly drawn slot with probability
capacity / n, so the memory is at all times a uniform sample of everything seen. Avalanche's
``ReservoirSamplingBuffer`` is filled once per experience from the experience's dataset and
cannot keep the logits DER stores; this one takes each minibatch right after it is trained on.
"""

from __future__ import annotations

import torch
from avalanche.core import SupervisedPlugin


class ReservoirMemory:
    """``capacity`` slots of named tensors (``x``, ``y``, ``t``, ``logits``, ...)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.seen = 0  # samples offered so far
        self.tensors: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return min(self.seen, self.capacity)

    def add(self, **batch: torch.Tensor) -> None:
        """Offer a minibatch: sample i is the (seen + i + 1)-th of the stream."""
        n = len(next(iter(batch.values())))
        if not self.tensors:
            self.tensors = {k: v.new_zeros((self.capacity, *v.shape[1:])) for k, v in batch.items()}
        position = self.seen + torch.arange(n)  # samples seen before each one
        drawn = (torch.rand(n) * (position + 1)).long()  # uniform in 0..position
        slot = torch.where(position < self.capacity, position, drawn)
        kept = (slot < self.capacity).nonzero().squeeze(1)
        self.seen += n
        if len(kept) == 0:
            return
        slot = slot[kept]
        if len(slot.unique()) < len(slot):  # a slot drawn twice: the later sample wins, as in a sequential pass
            last = {int(s): i for i, s in enumerate(slot)}
            pick = torch.tensor(sorted(last.values()))
            kept, slot = kept[pick], slot[pick]
        for name, value in batch.items():
            self.tensors[name][slot] = value[kept].detach().to(self.tensors[name].dtype)

    def sample(self, n: int, *names: str) -> tuple[torch.Tensor, ...]:
        """``min(n, len(self))`` distinct stored samples, drawn uniformly."""
        idx = torch.randperm(len(self))[:n]
        return tuple(self.tensors[name][idx] for name in names)

    def nbytes(self) -> int:
        """Bytes of the samples stored so far."""
        return len(self) * sum(t[0].element_size() * t[0].numel() for t in self.tensors.values())


class StreamReplayPlugin(SupervisedPlugin):
    """After each training step, the step's incoming minibatch (what the stream gave, before
    any replayed samples were joined to it) is offered to the reservoir memory; with
    ``keep_logits`` the model's unmasked outputs on it are kept too (DER's targets)."""

    keep_logits = False

    def __init__(self, capacity: int, batch_size_mem: int):
        super().__init__()
        self.memory = ReservoirMemory(capacity)
        self.batch_size_mem = batch_size_mem

    def before_training_iteration(self, strategy, **kwargs):
        self.incoming = (strategy.mb_x, strategy.mb_y, strategy.mb_task_id)

    def after_training_iteration(self, strategy, **kwargs):
        x, y, t = self.incoming
        logits = {"logits": strategy.mb_raw_output[: len(y)]} if self.keep_logits else {}
        self.memory.add(x=x, y=y, t=t, **logits)

    def replay(self, *names: str) -> tuple[torch.Tensor, ...]:
        return self.memory.sample(self.batch_size_mem, *names)

    def memory_bytes(self) -> int:
        return self.memory.nbytes()


def stream_memory_bytes(strategy) -> int:
    """``memory_bytes`` of a strategy whose memory is a StreamReplayPlugin's."""
    return next(p for p in strategy.plugins if isinstance(p, StreamReplayPlugin)).memory_bytes()


class OnlineReplayPlugin(StreamReplayPlugin):
    """ER: the incoming minibatch joined with a minibatch drawn from the memory, one loss over both."""

    def before_forward(self, strategy, **kwargs):
        if len(self.memory):
            replayed = self.replay("x", "y", "t")
            strategy.mbatch = [torch.cat((now, then)) for now, then in zip(strategy.mbatch[:3], replayed)]
