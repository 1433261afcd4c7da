"""GSS-Greedy: gradient-based sample selection (Aljundi et al., NeurIPS 2019), as in Mammoth
``models/gss.py`` and ``utils/gss_buffer.py`` (where the DER paper's GSS numbers come from).

Training: each incoming minibatch is trained on ``batch_num`` times, each time joined with
``replay_batch_size`` memory samples (successive slices of one random permutation of the
memory per incoming minibatch, Mammoth's ``fathom``), one cross-entropy over the join.

Selection, after those steps, with the updated model (gradients of the per-sample training loss):

* G: per-sample gradients of ``gss_minibatch_size`` memory items drawn at random, once per
  incoming minibatch; score(g) = max_j cos(g, G_j) + 1, in [0, 2];
* c = score of the incoming minibatch's mean-loss gradient (0.1 while the memory is empty);
* while the memory has room, each sample enters with score c;
* once full, only if c < 1 (the minibatch-level gate of Mammoth and the authors' code) is each
  sample i considered, in order: its own score c_i; a slot j drawn with probability
  score_j / sum(scores); with probability score_j / (score_j + c_i) sample i replaces slot j
  and takes score c_i (the paper's Algorithm 2).

The gate seldom opens on MNIST: on Permuted-MNIST (gss_minibatch_size 128) the largest cosine
stayed above 0.08 at every step, so the memory kept its first ``memory`` samples; with 10
scoring items it opened at 0.3% of the steps (measured here, one seed each).

Cosines between per-sample gradients are computed without a per-sample loop
(``baselines.sample_grads``: exact Gram products of layer inputs and output gradients for the
MLP, ``torch.func.vmap`` over ``grad`` for other backbones); only the greedy decisions run
sample by sample, over pre-drawn uniforms. Task-incremental runs score the
masked loss they train on (Mammoth's GSS loss is unmasked; identical on class-IL streams). A
minibatch larger than the whole memory, before anything is stored, leaves its overflow
unscored (Mammoth would fail there).

Avalanche's ``GSS_greedyPlugin`` is not used: it follows another implementation (online-
continual-learning): memory gradients of subset means (``mem_strength`` of them) instead of
per-sample ones, a batch-wide multinomial replacement on min-max-rescaled scores instead of
the sequential rule, a replay memory frozen per experience, and per-sample Python loops.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, PositiveInt

from baselines.registry import register_strategy
from baselines.replay import planned_bytes as replay_planned_bytes


class GSSOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gss_minibatch_size: PositiveInt | None = None  # memory items whose gradients score (None: replay_batch_size)
    batch_num: PositiveInt = 1  # training steps per incoming minibatch


def planned_bytes(options, memory: int, input_shape: tuple[int, ...]) -> int:
    return replay_planned_bytes(options, memory, input_shape, extra_per_item=4)  # + a float32 score


def memory_bytes(strategy) -> int:
    from baselines.stream_memory import stream_memory_bytes

    return stream_memory_bytes(strategy)


def greedy_replace(scores, candidate_scores, uniforms) -> dict[int, int]:
    """The sequential GSS decisions: for each candidate i in order, slot j drawn with probability
    scores[j] / sum (uniforms[i, 0]), replaced if uniforms[i, 1] < scores[j] / (scores[j] + c_i),
    and then scored c_i. Returns {slot: candidate}, the last replacement of a slot winning."""
    import numpy as np

    s = scores.double().cpu().numpy().copy()
    placed = {}
    for i, (c, (u_slot, u_keep)) in enumerate(zip(candidate_scores.tolist(), uniforms.tolist())):
        cumulative = np.cumsum(s)
        total = cumulative[-1]
        j = min(int(np.searchsorted(cumulative, u_slot * total, side="right")), len(s) - 1) if total > 0 else 0
        if u_keep < s[j] / (s[j] + c):
            placed[j] = i
            s[j] = c
    return placed


@register_strategy("gss", options=GSSOptions, memory_bytes=memory_bytes, planned_bytes=planned_bytes)
def build(setup, options: GSSOptions):
    import torch

    from baselines.sample_grads import dots, dots_with, gradient_factors, mean_gradient, sq_norms
    from baselines.stream_memory import StreamReplayPlugin

    n_scoring = options.gss_minibatch_size or setup.replay_mb_size

    class Repeat:
        """Each minibatch of ``loader`` ``times`` times in a row."""

        def __init__(self, loader, times: int):
            self.loader, self.times = loader, times

        def __len__(self):
            return len(self.loader) * self.times

        def __iter__(self):
            for batch in self.loader:
                for _ in range(self.times):
                    yield list(batch)

    class GSSPlugin(StreamReplayPlugin):
        def __init__(self):
            super().__init__(setup.memory, setup.replay_mb_size)
            self.repeat = 0  # training steps taken on the current incoming minibatch

        def before_training_exp(self, strategy, **kwargs):
            if options.batch_num > 1:
                strategy.dataloader = Repeat(strategy.dataloader, options.batch_num)

        def before_training_iteration(self, strategy, **kwargs):
            if self.repeat == 0:
                super().before_training_iteration(strategy)
                self.order, self.fathom = torch.randperm(len(self.memory)), 0

        def before_forward(self, strategy, **kwargs):
            if not len(self.memory):
                return
            idx = self.order[self.fathom : self.fathom + self.batch_size_mem]
            self.fathom = 0 if self.fathom + len(idx) >= len(self.memory) else self.fathom + len(idx)
            replayed = [self.memory.tensors[k][idx] for k in ("x", "y", "t")]
            strategy.mbatch = [torch.cat((now, then)) for now, then in zip(strategy.mbatch[:3], replayed)]

        def after_training_iteration(self, strategy, **kwargs):
            self.repeat = (self.repeat + 1) % options.batch_num
            if self.repeat == 0:
                self.select(strategy, *self.incoming)

        def select(self, strategy, x, y, t):
            memory, n, batch = self.memory, len(y), dict(x=x, y=y, t=t)
            if not memory.tensors:
                memory.tensors = {k: v.new_zeros((memory.capacity, *v.shape[1:])) for k, v in batch.items()}
                memory.tensors["score"] = torch.zeros(memory.capacity, device=x.device)
            c, scoring = 0.1, None
            if memory.seen:
                mx, my, mt = memory.sample(n_scoring, "x", "y", "t")
                both = self.factors(strategy, torch.cat((x, mx)), torch.cat((y, my)), torch.cat((t, mt)))
                new, mem = [(a[:n], b[:n]) for a, b in both], [(a[n:], b[n:]) for a, b in both]
                mem_norms = sq_norms(mem).sqrt()
                mean = mean_gradient(new)
                norm = sum(m.pow(2).sum() for m in mean).sqrt()
                c = float((dots_with(mean, mem) / (norm * mem_norms).clamp(min=1e-12)).max()) + 1
                scoring = new, mem, mem_norms
            k = min(memory.capacity - len(memory), n)
            if k:  # room left: the first k samples enter, with the minibatch's score
                for name, value in batch.items():
                    memory.tensors[name][len(memory) : len(memory) + k] = value[:k].detach()
                memory.tensors["score"][len(memory) : len(memory) + k] = c
            if k < n and c < 1 and scoring is not None:  # full: each remaining sample, by its own score
                new, mem, mem_norms = [(a[k:], b[k:]) for a, b in scoring[0]], scoring[1], scoring[2]
                cos = dots(new, mem) / (sq_norms(new).sqrt()[:, None] * mem_norms[None]).clamp(min=1e-12)
                candidates = cos.max(dim=1).values + 1
                placed = greedy_replace(memory.tensors["score"], candidates, torch.rand(n - k, 2))
                if placed:
                    slots = torch.tensor(list(placed), dtype=torch.long)
                    chosen = torch.tensor(list(placed.values()), dtype=torch.long)
                    for name, value in batch.items():
                        memory.tensors[name][slots] = value[k + chosen].detach()
                    memory.tensors["score"][slots] = candidates[chosen]
            memory.seen += n

        def factors(self, strategy, x, y, t):
            """Per-sample gradients of the loss the run trains on (task-masked where it masks)."""
            masks = None if strategy.class_masks is None else strategy.class_masks[t]
            return gradient_factors(strategy.model, x, y, masks)

    return setup.strategy(setup.classifier(), plugins=[GSSPlugin()])
