"""Reservoir replay (experience replay, ER): a reservoir memory of ``memory`` items; each step
trains on the incoming minibatch joined with ``replay_batch_size`` samples from the memory.

Two update schedules:

* default: Avalanche's ``ReplayPlugin`` with a ``ReservoirSamplingBuffer``, updated once per
  experience (after training on it). Avalanche's ``Replay`` wrapper uses an experience-balanced
  buffer, which is not reservoir sampling; this is the reservoir variant.
* ``online: true``: ER as in Chaudhry et al. (2019) and the DER paper's code (Mammoth): each
  minibatch enters the memory right after its step, so the memory also replays the current
  experience. The DER paper's "ER" rows use this.
"""

import math

from pydantic import BaseModel, ConfigDict

from baselines.registry import register_strategy


class ReplayOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    online: bool = False


def buffer_bytes(strategy) -> int:
    from baselines.stream_memory import StreamReplayPlugin, stream_memory_bytes
    from baselines.tensor_plugins import ReservoirReplayPlugin

    for plugin in strategy.plugins:
        if isinstance(plugin, ReservoirReplayPlugin):
            return plugin.buffer_bytes()
        if isinstance(plugin, StreamReplayPlugin):
            return stream_memory_bytes(strategy)
    raise LookupError("no replay memory among the strategy's plugins")


def boundary_need(options: ReplayOptions) -> str | None:
    """The default schedule fills the memory at the end of each experience; ``online`` needs no boundary."""
    if options.online:
        return None
    return "fills its memory at the end of each experience (`--option online=true` is ER, updated every step)"


def planned_bytes(options, memory: int, input_shape: tuple[int, ...], extra_per_item: int = 0) -> int:
    """A full memory: ``memory`` float32 inputs plus an int64 label and task label each (and
    ``extra_per_item`` bytes per item a method keeps besides, such as DER's logits)."""
    return memory * (4 * math.prod(input_shape) + 16 + extra_per_item)


@register_strategy(
    "replay",
    options=ReplayOptions,
    memory_bytes=buffer_bytes,
    planned_bytes=planned_bytes,
    needs_boundaries=boundary_need,
)
def build(setup, options: ReplayOptions):
    if options.online:
        from baselines.stream_memory import OnlineReplayPlugin

        plugin = OnlineReplayPlugin(setup.memory, setup.replay_mb_size)
    else:
        from baselines.tensor_plugins import ReservoirReplayPlugin

        plugin = ReservoirReplayPlugin(setup.memory, setup.replay_mb_size)
    return setup.strategy(setup.classifier(), plugins=[plugin])
