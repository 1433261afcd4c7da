"""ER-ACE: experience replay with asymmetric cross-entropy (Caccia et al., ICLR 2022).

The incoming minibatch's loss sees only the logits of the classes present in it (and of the
classes not seen yet), so new classes do not push old ones' logits down; replayed samples get
the full cross-entropy. As in the authors' and Mammoth's ``er_ace``: the mask applies from the
second experience on, replay starts there too, and the memory is a reservoir over the stream.
Avalanche 0.6's ``ER_ACE`` uses a class-balanced buffer instead, so the method is written here.
"""

from __future__ import annotations

from baselines.registry import register_strategy
from baselines.replay import buffer_bytes, planned_bytes


@register_strategy("er-ace", memory_bytes=buffer_bytes, planned_bytes=planned_bytes)
def build(setup, options):
    import torch
    import torch.nn.functional as F

    from baselines.stream_memory import StreamReplayPlugin

    class ERACEPlugin(StreamReplayPlugin):
        def __init__(self, capacity: int, batch_size_mem: int):
            super().__init__(capacity, batch_size_mem)
            self.seen_classes = torch.zeros(setup.n_classes, dtype=torch.bool)

        def before_backward(self, strategy, **kwargs):
            # on the labels' device: a CPU mask indexed by a GPU tensor is an error
            present = torch.zeros(setup.n_classes, dtype=torch.bool, device=strategy.mb_y.device)
            present[strategy.mb_y.unique()] = True
            self.seen_classes = self.seen_classes.to(present.device) | present
            if strategy.clock.train_exp_counter == 0:
                return
            allowed = present.clone()
            allowed[int(self.seen_classes.nonzero().max()) :] = True  # classes still to come stay open
            logits = strategy.mb_output.masked_fill(~allowed.to(strategy.device), torch.finfo(torch.float32).min)
            strategy.loss = F.cross_entropy(logits, strategy.mb_y)
            x, y, t = self.replay("x", "y", "t")
            strategy.loss += F.cross_entropy(strategy.mask_logits(strategy.model(x), t), y)

    return setup.strategy(setup.classifier(), plugins=[ERACEPlugin(setup.memory, setup.replay_mb_size)])
