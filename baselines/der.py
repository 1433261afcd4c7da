"""Dark Experience Replay (DER) and DER++ (Buzzega et al., NeurIPS 2020).

The memory is a reservoir over the stream (``baselines.stream_memory``) that keeps, with each
sample, the logits the model gave it when it was trained on. Each step adds to the loss on
the incoming minibatch

* DER:   alpha * MSE(f(x'), z') on a replayed minibatch (x', z'), and
* DER++: beta * CE(f(x''), y'') on a second, independently drawn replayed minibatch,

as in the paper's Algorithm 1 and the authors' code (Mammoth ``models/der.py``,
``models/derpp.py``): unmasked logits, MSE averaged over logits and samples. Avalanche 0.6's
``DER`` strategy fills a class-balanced buffer once per experience instead of a reservoir
during training, so the method is written here.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, NonNegativeFloat, PositiveFloat

from baselines.registry import register_strategy
from baselines.replay import planned_bytes as replay_planned_bytes

LOGIT_BYTES = 10 * 4  # ten float32 logits per stored sample (the MNIST benchmarks' classes)


class DEROptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alpha: PositiveFloat = 0.3  # weight of the logit-matching term


class DERPPOptions(DEROptions):
    beta: NonNegativeFloat = 0.5  # weight of the replayed-label term


def planned_bytes(options, memory: int, input_shape: tuple[int, ...]) -> int:
    return replay_planned_bytes(options, memory, input_shape, extra_per_item=LOGIT_BYTES)


def _build(setup, alpha: float, beta: float):
    import torch.nn.functional as F

    from baselines.stream_memory import StreamReplayPlugin

    class DERPlugin(StreamReplayPlugin):
        keep_logits = True

        def before_backward(self, strategy, **kwargs):
            if not len(self.memory):
                return
            x, logits = self.replay("x", "logits")
            strategy.loss += alpha * F.mse_loss(strategy.model(x), logits)
            if beta:
                x, y, t = self.replay("x", "y", "t")
                strategy.loss += beta * F.cross_entropy(strategy.mask_logits(strategy.model(x), t), y)

    return setup.strategy(setup.classifier(), plugins=[DERPlugin(setup.memory, setup.replay_mb_size)])


def memory_bytes(strategy) -> int:
    from baselines.stream_memory import stream_memory_bytes

    return stream_memory_bytes(strategy)


@register_strategy("der", options=DEROptions, memory_bytes=memory_bytes, planned_bytes=planned_bytes)
def build_der(setup, options: DEROptions):
    return _build(setup, options.alpha, 0.0)


@register_strategy("derpp", options=DERPPOptions, memory_bytes=memory_bytes, planned_bytes=planned_bytes)
def build_derpp(setup, options: DERPPOptions):
    return _build(setup, options.alpha, options.beta)
