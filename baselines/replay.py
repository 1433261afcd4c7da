"""Reservoir replay: Avalanche's ReplayPlugin with a ReservoirSamplingBuffer of ``memory`` items.

Avalanche's ``Replay`` wrapper uses an experience-balanced buffer, which is not reservoir
sampling; this is the reservoir variant. The buffer is updated once per experience (after
training on it), as Avalanche does. Each step trains on a minibatch of current data followed
by an equally sized minibatch from the buffer.
"""

import math

from baselines.registry import register_strategy


def buffer_bytes(strategy) -> int:
    from baselines.tensor_plugins import ReservoirReplayPlugin

    return next(p for p in strategy.plugins if isinstance(p, ReservoirReplayPlugin)).buffer_bytes()


def planned_bytes(options, memory: int, input_shape: tuple[int, ...]) -> int:
    """A full buffer: ``memory`` float32 inputs plus an int64 label and task label each."""
    return memory * (4 * math.prod(input_shape) + 16)


@register_strategy("replay", memory_bytes=buffer_bytes, planned_bytes=planned_bytes)
def build(setup, options):
    from baselines.tensor_plugins import ReservoirReplayPlugin

    return setup.strategy(setup.classifier(), plugins=[ReservoirReplayPlugin(setup.memory)])
