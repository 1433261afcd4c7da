"""Reservoir replay: Avalanche's ReplayPlugin with a ReservoirSamplingBuffer of ``memory`` items.

Avalanche's ``Replay`` wrapper uses an experience-balanced buffer, which is not reservoir
sampling; this is the reservoir variant. The buffer is updated once per experience (after
training on it), as Avalanche does. Each step trains on a minibatch of current data followed
by an equally sized minibatch from the buffer.
"""

from avalanche.training.plugins import ReplayPlugin
from avalanche.training.storage_policy import ReservoirSamplingBuffer

from baselines.loaders import TensorReplayBatches, dataset_tensors
from baselines.registry import register_strategy


class ReservoirReplayPlugin(ReplayPlugin):
    """ReplayPlugin whose replay minibatches come from tensors when the strategy allows it."""

    def __init__(self, mem_size: int):
        super().__init__(mem_size=mem_size, storage_policy=ReservoirSamplingBuffer(max_size=mem_size))

    def before_training_exp(self, strategy, **kwargs):
        tensors = strategy.experience_tensors() if hasattr(strategy, "experience_tensors") else None
        if tensors is None or len(self.storage_policy.buffer) == 0:
            return super().before_training_exp(strategy, **kwargs)
        memory = dataset_tensors(self.storage_policy.buffer)
        strategy.dataloader = TensorReplayBatches(tensors, memory, strategy.train_mb_size, strategy.train_mb_size)


    def after_training_exp(self, strategy, **kwargs):
        # What ReplayPlugin does through the deprecated ``storage_policy.update``, minus its warning.
        self.storage_policy.post_adapt(strategy, strategy.experience)


def buffer_bytes(strategy) -> int:
    plugin = next(p for p in strategy.plugins if isinstance(p, ReservoirReplayPlugin))
    buffer = plugin.storage_policy.buffer
    if len(buffer) == 0:
        return 0
    return sum(t.element_size() * t.numel() for t in dataset_tensors(buffer))


@register_strategy("replay", memory_bytes=buffer_bytes)
def build(setup, options):
    return setup.strategy(setup.classifier(), plugins=[ReservoirReplayPlugin(setup.memory)])
