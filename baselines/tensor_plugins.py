"""Avalanche plugins whose data paths read the experience's pre-loaded tensors.

Each is Avalanche's own plugin with one data path swapped for a tensor gather that visits the
same samples in the same order (tests check the results are identical to the stock path).
The strategy modules import this module inside ``build``: registering a strategy and
validating its options must not import torch or Avalanche.
"""

from avalanche.training.plugins import EWCPlugin, ReplayPlugin
from avalanche.training.storage_policy import ReservoirSamplingBuffer

from baselines.loaders import TensorReplayBatches, TensorView, dataset_tensors


class ReservoirReplayPlugin(ReplayPlugin):
    """ReplayPlugin with a reservoir buffer whose replay minibatches come from tensors when
    the strategy allows it."""

    def __init__(self, mem_size: int, batch_size_mem: int | None = None):
        super().__init__(
            mem_size=mem_size, batch_size_mem=batch_size_mem, storage_policy=ReservoirSamplingBuffer(max_size=mem_size)
        )

    def before_training_exp(self, strategy, **kwargs):
        tensors = strategy.experience_tensors() if hasattr(strategy, "experience_tensors") else None
        if tensors is None or len(self.storage_policy.buffer) == 0:
            return super().before_training_exp(strategy, **kwargs)
        memory = dataset_tensors(self.storage_policy.buffer)
        strategy.dataloader = TensorReplayBatches(
            tensors, memory, strategy.train_mb_size, self.batch_size_mem or strategy.train_mb_size
        )

    def after_training_exp(self, strategy, **kwargs):
        # What ReplayPlugin does through the deprecated ``storage_policy.update``, minus its warning.
        self.storage_policy.post_adapt(strategy, strategy.experience)

    def buffer_bytes(self) -> int:
        buffer = self.storage_policy.buffer
        if len(buffer) == 0:
            return 0
        return sum(t.element_size() * t.numel() for t in dataset_tensors(buffer))


class TensorEWCPlugin(EWCPlugin):
    """EWCPlugin whose Fisher pass reads the experience's tensors batch-wise (same batches,
    same order as the stock per-sample loader, so the importances are identical)."""

    _view = None

    def after_training_exp(self, strategy, **kwargs):
        tensors = strategy.experience_tensors() if hasattr(strategy, "experience_tensors") else None
        self._view = None if tensors is None else TensorView(tensors)
        super().after_training_exp(strategy, **kwargs)

    def compute_importances(self, model, criterion, optimizer, dataset, device, batch_size, num_workers=0):
        data = dataset if self._view is None else self._view
        return super().compute_importances(model, criterion, optimizer, data, device, batch_size, num_workers)

    def penalty_bytes(self) -> int:
        """Bytes of the stored parameter copies and Fisher importances."""
        total = 0
        for per_exp in (self.saved_params, self.importances):
            for params in per_exp.values():
                total += sum(p.data.element_size() * p.data.numel() for p in params.values())
        return total
