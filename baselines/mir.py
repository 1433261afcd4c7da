"""ER with Maximally Interfered Retrieval (MIR; Aljundi et al., NeurIPS 2019).

Each step, before training on the incoming minibatch B (the paper's Algorithm 1, ER-MIR):

1. ``subsample`` candidates are drawn uniformly from the memory (paper and authors' code: 50
   on MNIST);
2. a virtual update theta_v is computed from the gradient of the loss on B, the step the run's
   optimiser would take, without changing the model or the optimiser's state;
3. each candidate is scored by its loss increase, loss(theta_v) - loss(theta);
4. the ``replay_batch_size`` highest-scoring candidates join B, and one loss over the joined
   minibatch is minimised (the paper's SGD on B u B_M, as the harness's online ER).

The memory is a reservoir over the stream (``baselines.stream_memory``), updated with B after
the step, as in the paper. Under SGD the virtual step is theta - lr * g, the paper's. Under
Adam it is Adam's own next step from a copy of its moments: the parameters the real update
is about to produce, which is what "maximally interfered" is measured against (an SGD step
with Adam's lr would score interference with a direction the model never takes).

Differences from the authors' code, kept on purpose: their loss sums the two minibatch means
(twice this step size under SGD for equal sizes), their candidates exclude the current task
and replay starts at the second task, and their MNIST scripts add ``--compare_to_old_logits``
(score against the lowest loss ever stored). Here MIR differs from the harness's online ER in
the retrieval alone.

Avalanche's ``MIRPlugin`` is not used: its memory is a class-balanced buffer refilled once per
experience (no replay during the first), it excludes the last minibatch's classes, defaults to
200 candidates and takes an SGD virtual step whatever the optimiser.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, PositiveInt

from baselines.registry import register_strategy
from baselines.replay import buffer_bytes, planned_bytes


class MIROptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subsample: PositiveInt = 50  # memory candidates scored per step (the paper's C, 50 on MNIST)


def virtual_step(optimizer, params: dict, grads: dict) -> dict:
    """The values ``optimizer.step()`` would give the parameters ``params`` (name -> the
    optimiser's own tensors, which key its state) for ``grads``, changing neither.

    torch.optim.SGD (no momentum) and torch.optim.Adam (no amsgrad), weight decay included."""
    import torch

    (group,) = optimizer.param_groups
    lr, decay = group["lr"], group["weight_decay"]
    out = {}
    for name, param in params.items():
        state, p = optimizer.state.get(param, {}), param.detach()
        g = grads[name] + decay * p if decay else grads[name]
        if isinstance(optimizer, torch.optim.SGD) and not group["momentum"]:
            out[name] = p - lr * g
        elif isinstance(optimizer, torch.optim.Adam) and not group["amsgrad"]:
            beta1, beta2 = group["betas"]
            step = float(state["step"]) + 1 if state else 1.0
            m = beta1 * state["exp_avg"] + (1 - beta1) * g if state else (1 - beta1) * g
            v = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g if state else (1 - beta2) * g * g
            denom = v.sqrt() / (1 - beta2**step) ** 0.5 + group["eps"]
            out[name] = p - lr / (1 - beta1**step) * m / denom
        else:
            raise NotImplementedError(f"mir: no virtual step for {type(optimizer).__name__} with {group}")
    return out


@register_strategy("mir", options=MIROptions, memory_bytes=buffer_bytes, planned_bytes=planned_bytes)
def build(setup, options: MIROptions):
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call

    from baselines.stream_memory import StreamReplayPlugin

    if options.subsample <= setup.replay_mb_size:
        raise ValueError(
            f"mir: subsample ({options.subsample}) must exceed the replay minibatch ({setup.replay_mb_size}),"
            " else every candidate is replayed and MIR is random replay; set replay_batch_size (the paper: 10)"
        )

    class MIRPlugin(StreamReplayPlugin):
        def most_interfered(self, strategy, x, y, t):
            """Indices of the ``batch_size_mem`` candidates whose loss the virtual step raises most."""
            model = strategy.model
            params = dict(model.named_parameters())
            x_in, y_in, t_in = strategy.mbatch[:3]
            loss = F.cross_entropy(strategy.mask_logits(model(x_in), t_in), y_in)
            grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
            with torch.no_grad():
                virtual = virtual_step(strategy.optimizer, params, grads)
                before = F.cross_entropy(strategy.mask_logits(model(x), t), y, reduction="none")
                moved = functional_call(model, virtual, (x,))
                after = F.cross_entropy(strategy.mask_logits(moved, t), y, reduction="none")
            return torch.argsort(after - before, descending=True, stable=True)[: self.batch_size_mem]

        def before_forward(self, strategy, **kwargs):
            if not len(self.memory):
                return
            x, y, t = self.memory.sample(options.subsample, "x", "y", "t")
            chosen = self.most_interfered(strategy, x, y, t)
            replayed = (x[chosen], y[chosen], t[chosen])
            strategy.mbatch = [torch.cat((now, then)) for now, then in zip(strategy.mbatch[:3], replayed)]

    return setup.strategy(setup.classifier(), plugins=[MIRPlugin(setup.memory, setup.replay_mb_size)])
