"""EpiNet: encoder + episodic memory + recall + mixture-of-experts decoder, and its training step."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer

from epinet.backbones import make_backbone
from epinet.config import EpiNetConfig
from epinet.decoder import MixtureOfExpertsDecoder
from epinet.memory import EpisodicMemory
from epinet.recall import RecallEngine
from epinet.salience import Clock, make_clock
from epinet.slow_weights import SlowWeights

MaskLogits = Callable[[Tensor, Tensor], Tensor]


class EpiNetModel(nn.Module):
    """The assembled EpiNet (notebook cell 7, made to run).

    ``forward(x)`` encodes, recalls from memory (in train and eval mode alike) and decodes
    to logits; it has no side effects. One training iteration is :meth:`observe`, readable
    top to bottom. A loop that owns the forward pass and the optimizer (Avalanche's, through
    ``epinet.plugin``) calls the same parts in the same order: :meth:`replay_slots` and
    :meth:`with_replayed`, its own forward pass over that (:meth:`forward_with_latent`),
    :meth:`training_loss`, its own backward and optimizer step, :meth:`store`; and
    :meth:`end_experience` after each experience.

    Memory contents and the clock are buffers, so ``state_dict`` captures everything needed
    to predict identically.
    """

    def __init__(
        self,
        config: EpiNetConfig,
        backbone_name: str,
        num_classes: int,
        input_shape: Sequence[int] = (1, 28, 28),
        mlp_width: int = 400,
    ) -> None:
        super().__init__()
        self.config = config
        self.num_classes = num_classes
        backbone, feature_dim = make_backbone(backbone_name, mlp_width)
        self.encoder = nn.Sequential(backbone, nn.Linear(feature_dim, config.latent_dim))
        self.memory = EpisodicMemory(
            config.capacity,
            input_shape,
            config.latent_dim,
            config.class_balanced,
            by_origin=config.balance_origin,
            num_classes=num_classes if config.response_weight else 0,
            store_keys=config.recalls,
        )
        self.recall_engine = RecallEngine(config.top_k, config.recall_index)
        self.decoder = MixtureOfExpertsDecoder(
            config.latent_dim, config.hidden_dim, num_classes, config.num_experts, reads_recall=config.recall
        )
        self.clock: Clock = make_clock(config.clock)
        self.slow = SlowWeights(self.network, config.slow_decay) if config.slow_decay else None
        # Experiences ended so far (the origin stamped on new episodes), and the classes seen.
        self.register_buffer("experience", torch.zeros((), dtype=torch.long))
        self.register_buffer("seen_classes", torch.zeros(num_classes, dtype=torch.bool))

    @property
    def iterations(self) -> int:
        """Training iterations ticked so far."""
        return int(self.clock.ticks)

    @property
    def origin(self) -> int:
        """The origin stamped on episodes stored now: the experiences ended so far, or with
        ``config.origin_every`` = N > 0, the clock's time bucket (iterations // N)."""
        every = self.config.origin_every
        return self.iterations // every if every else int(self.experience)

    # ------------------------------------------------------------------ one training iteration

    def observe(
        self, x: Tensor, y: Tensor, t: Tensor | int, optimizer: Optimizer, mask_logits: MaskLogits | None = None
    ) -> Tensor:
        """One training iteration on the batch (x, y, t); returns the loss it backpropagated.

        ``mask_logits(logits, task_labels)``, if given, masks the logits of the batch and of
        the replayed memories (task-incremental learning).
        """
        # What the iteration computes: loss = loss_main + beta * loss_replay + gamma * loss_response,
        # from one forward pass over the batch followed by the memories it replays.
        optimizer.zero_grad()
        b = len(y)
        slots = self.replay_slots(b)
        xs, ts = self.with_replayed(x, t, slots)
        raw_logits, z = self.forward_with_latent(xs)
        logits = raw_logits if mask_logits is None else mask_logits(raw_logits, ts)
        loss = self.training_loss(logits[:b], y, slots, raw_logits[b:], logits[b:])
        loss.backward()
        optimizer.step()
        self.after_update()
        # What it stores afterwards: the batch in memory, one clock tick, periodic re-encoding;
        # then the clock's consolidation pass, if one is due.
        self.store(x, z[:b], raw_logits[:b], y, t, mask_logits)
        self.on_clock(optimizer, b, mask_logits)
        return loss.detach()

    def replay_slots(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor | None:
        """The memories a batch of ``batch_size`` replays: ``config.replay_batch_size`` of them,
        else ``ceil(config.replay_fraction * batch_size)``, drawn without replacement: uniformly,
        or with ``config.recent_share`` = q, a share q of them from the episodes of the current
        origin (this experience's) and the rest from older ones. None when there is nothing to
        replay (empty memory, or beta = gamma = 0)."""
        if len(self.memory) == 0 or (self.config.beta == 0 and self.config.response_weight == 0):
            return None
        n = self.config.replay_batch_size or math.ceil(self.config.replay_fraction * batch_size)
        if self.config.recent_share is None:
            return self.memory.sample_slots(n, generator)
        return self.memory.sample_slots_split(n, self.origin, self.config.recent_share, generator)

    def with_replayed(self, x: Tensor, t: Tensor | int, slots: Tensor | None) -> tuple[Tensor, Tensor]:
        """(x, t) of the batch followed by the memories in ``slots``: one forward pass serves the
        batch and the replay term (the network has no batch statistics, so each row's output is
        the same either way, and one pass over 2B rows is cheaper than two over B)."""
        t = torch.as_tensor(t, device=x.device, dtype=torch.long).expand(x.shape[0])
        if slots is None:
            return x, t
        return torch.cat([x, self.memory.x[slots].to(x.dtype)]), torch.cat([t, self.memory.t[slots]])

    def forward_with_latent(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(logits, z): the decoder's logits, and the batch's latent (detached) that memory stores."""
        z = self.encode(x)
        return self.decoder(z, self.recall(z)), z.detach()

    def training_loss(
        self,
        logits: Tensor,
        y: Tensor,
        slots: Tensor | None = None,
        replay_raw_logits: Tensor | None = None,
        replay_logits: Tensor | None = None,
    ) -> Tensor:
        """The loss to backpropagate: ``loss_main`` on the batch's (possibly masked) ``logits``
        and labels ``y``, plus, when memories were replayed (``slots``), the replay term on their
        logits, unmasked and masked (see :meth:`replay_loss`)."""
        main = self.current_batch_loss(logits, y)
        if slots is None:
            return main
        return main + self.replay_loss(slots, replay_raw_logits, replay_logits)

    def current_batch_loss(self, logits: Tensor, y: Tensor) -> Tensor:
        """loss_main: cross-entropy on the batch; with ``config.asymmetric``, only over the
        classes present in it and those never seen (so new classes do not push old ones down)."""
        if self.config.asymmetric:
            allowed = ~self.seen_classes
            allowed[y] = True
            logits = logits.masked_fill(~allowed, torch.finfo(logits.dtype).min)
        return F.cross_entropy(logits, y)

    def store(
        self,
        x: Tensor,
        z: Tensor,
        raw_logits: Tensor,
        y: Tensor,
        t: Tensor | int,
        mask_logits: MaskLogits | None = None,
    ) -> None:
        """After the optimizer step: offer the batch to memory with its per-sample loss as
        salience (and its unmasked logits as stored responses), tick the clock, and re-encode
        memory every ``config.reencode_every`` ticks.

        ``mask_logits`` is applied to the logits for the salience loss, so it must be
        idempotent (the harness passes logits that are not masked; others may be).
        """
        raw_logits = raw_logits.detach()
        if self.config.salience == "loss":
            logits = raw_logits if mask_logits is None else mask_logits(raw_logits, t)
            per_sample_loss = F.cross_entropy(logits, y, reduction="none")
        else:  # memorize ignores the loss's values then: skip computing it every step
            per_sample_loss = raw_logits.new_zeros(len(y))
        self.memorize(x, z, per_sample_loss, y, t, raw_logits)
        self.seen_classes[y] = True
        self.tick()
        every = self.config.reencode_every
        if every and self.iterations % every == 0:
            self.reencode_memory()

    def on_clock(self, optimizer: Optimizer, batch_size: int, mask_logits: MaskLogits | None = None) -> None:
        """After :meth:`store`: the consolidation pass when ``config.consolidate_every`` ticks have
        passed since the last (a boundary-free trigger; off at 0)."""
        every = self.config.consolidate_every
        if every and self.config.consolidation_epochs and self.iterations % every == 0:
            self.consolidate(optimizer, batch_size, mask_logits)

    def end_experience(
        self, optimizer: Optimizer | None = None, batch_size: int = 128, mask_logits: MaskLogits | None = None
    ) -> None:
        """After training on an experience: the consolidation pass on memory alone (if
        configured; it needs the optimizer), then refresh stored latents if so configured."""
        if self.config.consolidation_epochs and optimizer is not None:
            self.consolidate(optimizer, batch_size, mask_logits)
        if self.config.reencode_every_experience:
            self.reencode_memory()
        self.experience += 1

    def consolidate(self, optimizer: Optimizer, batch_size: int, mask_logits: MaskLogits | None = None) -> None:
        """``config.consolidation_epochs`` epochs over memory, in random order, with the replay
        loss alone: a pass that rebalances the decoder toward every stored class."""
        for _ in range(self.config.consolidation_epochs):
            for slots in self.memory.sample_slots(len(self.memory)).split(batch_size):
                optimizer.zero_grad()
                self.memory_loss(slots, mask_logits).backward()
                optimizer.step()
                self.after_update()

    def after_update(self) -> None:
        """After each optimizer step: the slow weights (if kept) take a step toward the network's."""
        if self.slow is not None:
            self.slow.update(self.network)

    # ------------------------------------------------------------------ the parts

    @property
    def network(self) -> dict[str, nn.Module]:
        """The trained modules, by name: what the slow weights average."""
        return {"encoder": self.encoder, "decoder": self.decoder}

    def encode(self, x: Tensor) -> Tensor:
        """Latent z, shape [B, latent_dim]."""
        return self.encoder(x)

    def recall(self, z: Tensor) -> Tensor | None:
        """Recall embedding r for latents z (None when ``config.recall`` is off: the decoder
        then reads z alone)."""
        return self.recall_with_votes(z, with_votes=False)[0]

    def recall_with_votes(self, z: Tensor, with_votes: bool) -> tuple[Tensor | None, Tensor | None]:
        """(r, votes): the recall embedding fed to the decoder (None when ``config.recall``
        is off) and, if asked, the recalled labels' distribution (else None)."""
        if not self.config.recall and not with_votes:
            return None, None
        # r is not differentiable in z (top-k indices select stored buffers),
        # so no graph is built for it.
        with torch.no_grad():
            r, votes = self.recall_engine.recall_with_votes(
                z, self.memory, self.clock.now(), self.config.alpha, self.num_classes if with_votes else 0
            )
        return (r if self.config.recall else None), votes

    def forward(self, x: Tensor) -> Tensor:
        """Decoder logits in training; at evaluation with ``vote_weight`` lambda > 0, the
        log of ``(1 - lambda) softmax(logits) + lambda votes`` (label-carrying recall).
        At evaluation with slow weights, encoder and decoder compute with those."""
        slow = None if self.training else self.slow
        z = self.encode(x) if slow is None else slow.call("encoder", self.encoder, x)
        vote_weight = 0.0 if self.training else self.config.vote_weight
        r, votes = self.recall_with_votes(z, with_votes=vote_weight > 0)
        logits = self.decoder(z, r) if slow is None else slow.call("decoder", self.decoder, z, r)
        if votes is None:
            return logits
        p = (1 - vote_weight) * F.softmax(logits, dim=1) + vote_weight * votes
        return torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))

    def memorize(
        self, x: Tensor, z: Tensor, per_sample_loss: Tensor, y: Tensor, t: Tensor | int, logits: Tensor | None = None
    ) -> None:
        """Offer a batch to memory, stamped with the clock's current time and the experience.

        r0 is the per-sample loss (a surprise signal), U(0, 1) from the global torch RNG
        when ``config.salience == "random"``, or 1 when it is ``"uniform"`` (then only age
        orders episodes: salience is the decay alone). ``logits`` are kept as stored
        responses when ``config.response_weight > 0``.
        """
        if self.config.salience == "random":
            r0 = torch.rand(x.shape[0]).to(per_sample_loss.device)
        elif self.config.salience == "uniform":
            r0 = torch.ones_like(per_sample_loss)
        else:
            r0 = per_sample_loss.detach()
        responses = logits if self.config.response_weight else None
        self.memory.admit(x, z, r0, y, t, self.clock.now(), self.config.alpha, origin=self.origin, logits=responses)

    def memory_loss(self, slots: Tensor, mask_logits: MaskLogits | None = None) -> Tensor:
        """:meth:`replay_loss` on the memories in ``slots``, with a forward pass of their own
        (their logits masked by ``mask_logits(logits, task_labels)`` if given)."""
        raw_logits = self(self.memory.x[slots])
        logits = raw_logits if mask_logits is None else mask_logits(raw_logits, self.memory.t[slots])
        return self.replay_loss(slots, raw_logits, logits)

    def replay_loss(self, slots: Tensor, raw_logits: Tensor, logits: Tensor) -> Tensor:
        """``beta * loss_replay + gamma * loss_response`` on the memories in ``slots``, given the
        model's logits for them, unmasked (``raw_logits``) and masked (``logits``).

        loss_replay is the notebook's cross-entropy of the masked logits on the stored labels;
        loss_response the mean squared error between the unmasked logits and the stored
        responses. Replayed memories are reconsolidated as ``config.reconsolidate`` says.
        """
        y = self.memory.y[slots]
        per_sample = F.cross_entropy(logits, y, reduction="none")
        loss = self.config.beta * per_sample.mean()
        if self.config.response_weight:
            loss = loss + self.config.response_weight * F.mse_loss(raw_logits, self.memory.logits[slots])
        mode = self.config.reconsolidate
        if mode != "none":
            self.memory.reconsolidate(
                slots,
                now=self.clock.now() if mode in ("tau", "both") else None,
                r0=per_sample if mode in ("r0", "both") else None,
            )
        return loss

    def tick(self) -> None:
        """Advance the clock by one training iteration."""
        self.clock.tick()

    def reencode_memory(self, batch_size: int = 512) -> None:
        """Refresh stored latents and keys with the current encoder."""
        self.memory.reencode(self.encoder, batch_size)
