"""Fixed-capacity episodic memory with salience-driven admission."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from epinet.memory_layout import planned_nbytes, slot_fields
from epinet.salience import TIME_DTYPE, decayed_salience
from epinet.strata import class_balanced_top, stratum_keys

# Element type of each field kind of ``memory_layout.slot_fields`` (None: torch's default dtype).
_DTYPES = {"float": None, "time": TIME_DTYPE, "label": torch.long}


class EpisodicMemory(nn.Module):
    """Fixed-capacity store of memories m = (x, z, c, r0, tau, y, t, e[, logits]).

    Notebook ``EpisodicMemory``, with preallocated buffers and batched
    admission. Every field is a registered buffer, so the memory moves with
    ``.to()`` and round-trips through ``state_dict``; only the first
    ``size`` rows are meaningful.

    Fields, per slot:
        x:   raw input [*input_shape]; the replay term and re-encoding need it.
        z:   latent embedding at storage (or last re-encoding) time; the value
             that recall averages.
             (z and c are kept only with ``store_keys=True``: nothing else reads them.)
        c:   context key. The notebook never defines c; here it is the
             L2-normalised latent, ``z / ||z||``. Unit keys turn recall's
             cosine similarity into a single matmul, and re-encoding
             refreshes them together with z.
        r0:  initial salience (the notebook's r0).
        tau: storage time in clock units (float64, see ``salience.TIME_DTYPE``).
        y:   class label. t: task label.
        e:   origin, the experience (or time bucket) the memory was stored in.
        logits: the model's response at storage time (only with ``num_classes > 0``):
             what was thought of x then, which replay can distil toward.

    Admission (notebook ``EpisodicMemory.add``): append while under capacity;
    once full, a newcomer replaces the stored memory of lowest decayed
    salience iff its r0 is strictly greater. With ``class_balanced=True`` and/or
    ``by_origin=True`` the full-memory rule instead keeps a top set balanced over
    strata (class, origin, or both; see :meth:`admit`).
    """

    x: Tensor
    z: Tensor
    c: Tensor
    r0: Tensor
    tau: Tensor
    y: Tensor
    t: Tensor
    e: Tensor
    size: Tensor

    def __init__(
        self,
        capacity: int,
        input_shape: Sequence[int],
        latent_dim: int,
        class_balanced: bool = False,
        by_origin: bool = False,
        num_classes: int = 0,
        store_keys: bool = True,
    ) -> None:
        super().__init__()
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.input_shape = tuple(input_shape)
        self.latent_dim = latent_dim
        self.class_balanced = class_balanced
        self.by_origin = by_origin
        self.store_keys = store_keys
        self.fields = slot_fields(self.input_shape, latent_dim, num_classes, store_keys)
        for name, (shape, kind) in self.fields.items():
            self.register_buffer(name, torch.zeros(capacity, *shape, dtype=_DTYPES[kind]))
        self.register_buffer("size", torch.zeros((), dtype=torch.long))
        # A count of writes through this class's methods, and the count at which each slot was
        # last written (not state: never saved or moved). A search index over the keys uses them
        # to re-file only the slots written since it last looked: comparing every key against a
        # copy costs 70 ms at 100,000 memories, these 0.1 ms.
        self.version = 0
        self.written_at = torch.zeros(capacity, dtype=torch.long)

    def __len__(self) -> int:
        return int(self.size)

    def extra_repr(self) -> str:
        return (
            f"capacity={self.capacity}, input_shape={self.input_shape}, "
            f"latent_dim={self.latent_dim}, class_balanced={self.class_balanced}, by_origin={self.by_origin}"
        )

    @property
    def nbytes(self) -> int:
        """Bytes held by all buffers (the full preallocated capacity)."""
        return sum(b.numel() * b.element_size() for b in self.buffers())

    @staticmethod
    def planned_nbytes(
        capacity: int,
        input_shape: Sequence[int],
        latent_dim: int,
        dtype: torch.dtype | None = None,
        num_classes: int = 0,
        store_keys: bool = True,
    ) -> int:
        """The ``nbytes`` of ``EpisodicMemory(capacity, input_shape, latent_dim, ...)`` with these
        options, cast to ``dtype`` (default: torch's default dtype), computed without allocating it."""
        float_bytes = (dtype or torch.get_default_dtype()).itemsize
        return planned_nbytes(capacity, input_shape, latent_dim, float_bytes, num_classes, store_keys)

    def salience(self, now: Tensor | float, alpha: float) -> Tensor:
        """Decayed salience of the stored memories, shape [size]."""
        n = len(self)
        return decayed_salience(self.r0[:n], self.tau[:n], now, alpha)

    @torch.no_grad()
    def admit(
        self,
        x: Tensor,
        z: Tensor,
        r0: Tensor,
        y: Tensor,
        t: Tensor | int,
        now: Tensor | float,
        alpha: float,
        origin: int = 0,
        logits: Tensor | None = None,
    ) -> None:
        """Offer a batch of B candidate memories; store those that win.

        The result equals applying the notebook's one-at-a-time rule to the
        batch in order: the first ``capacity - size`` newcomers are appended
        in batch order; each later one replaces the lowest-decayed-salience
        memory iff its r0 is strictly greater. Saliences do not change within
        a batch (newcomers are stamped ``tau = now`` so their salience is r0),
        so that sequence keeps the top ``capacity`` saliences of stored ∪
        newcomers, resolved here in one step: newcomers sorted by r0
        descending are paired with stored memories sorted by salience
        ascending, and the pairs where the newcomer is strictly greater (a
        prefix) are swapped in. Ties between equal saliences are resolved in
        favour of stored memories, then earlier newcomers; the notebook
        instead resolves a tie between a stored memory and an earlier
        newcomer of the same batch by slot index. Slot positions of the
        replacements are unspecified (nothing depends on slot order).

        With ``class_balanced=True``, once full the memory keeps, from
        stored ∪ newcomers, each class's top ``capacity // n_classes`` by
        salience (``n_classes`` = classes present in that union), then fills
        the remaining slots with the highest-salience leftovers; newcomers
        kept overwrite the slots of stored memories not kept. ``by_origin=True``
        does the same over origins, and both together over (class, origin) strata:
        storage balanced over time, with salience deciding only within a stratum.

        Args:
            x: raw inputs [B, *input_shape].
            z: latents [B, latent_dim] (detached; c is derived from them).
            r0: initial salience [B].
            y: class labels [B]. t: task labels [B] or one int for all.
            now: current clock reading. alpha: decay rate per clock unit.
            origin: the experience (or time bucket) the batch comes from.
            logits: the model's responses [B, num_classes] (required iff the memory keeps them).
        """
        b = x.shape[0]
        self._check_batch(x, z, r0, y, b)
        if b == 0:
            return
        device = self.x.device
        new = {
            "x": x.to(device, self.x.dtype),
            "r0": r0.detach().to(device, self.r0.dtype),
            "y": y.to(device, torch.long),
            "t": torch.as_tensor(t, device=device, dtype=torch.long).expand(b),
        }
        if self.store_keys:
            new["z"] = z.detach().to(device, self.z.dtype)
            new["c"] = F.normalize(new["z"], dim=1)
        new["e"] = torch.full((b,), origin, device=device, dtype=torch.long)
        if ("logits" in self.fields) != (logits is not None):
            raise ValueError("logits must be given exactly when the memory keeps responses (num_classes > 0)")
        if logits is not None:
            new["logits"] = logits.detach().to(device, self.logits.dtype)

        n = len(self)
        n_append = min(self.capacity - n, b)
        if n_append > 0:
            self._write(
                torch.arange(n, n + n_append, device=device),
                torch.arange(n_append, device=device),
                new,
                now,
            )
            self.size += n_append
        if n_append == b:
            return

        late_r0 = new["r0"][n_append:]
        if self.class_balanced or self.by_origin:
            slots, chosen = self._balanced_replacements(late_r0, new["y"][n_append:], new["e"][n_append:], now, alpha)
        else:
            slots, chosen = self._salience_replacements(late_r0, now, alpha)
        self._write(slots, chosen + n_append, new, now)

    def _check_batch(self, x: Tensor, z: Tensor, r0: Tensor, y: Tensor, b: int) -> None:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"x has item shape {tuple(x.shape[1:])}, memory stores {self.input_shape}")
        if tuple(z.shape) != (b, self.latent_dim):
            raise ValueError(f"z has shape {tuple(z.shape)}, expected ({b}, {self.latent_dim})")
        for name, v in (("r0", r0), ("y", y)):
            if tuple(v.shape) != (b,):
                raise ValueError(f"{name} has shape {tuple(v.shape)}, expected ({b},)")

    def _salience_replacements(self, new_r0: Tensor, now: Tensor | float, alpha: float) -> tuple[Tensor, Tensor]:
        """(slots to overwrite, newcomer indices) under replace-the-min."""
        stored = self.salience(now, alpha)
        # Stable sorts: among equal values, earlier newcomers and lower slots
        # come first, which makes tie handling deterministic.
        new_order = torch.sort(new_r0, descending=True, stable=True).indices
        old_order = torch.sort(stored, stable=True).indices
        m = min(new_order.numel(), old_order.numel())
        # new side non-increasing, old side non-decreasing: wins form a prefix.
        wins = new_r0[new_order[:m]] > stored[old_order[:m]]
        k = int(wins.sum())
        return old_order[:k], new_order[:k]

    def _balanced_replacements(
        self, new_r0: Tensor, new_y: Tensor, new_e: Tensor, now: Tensor | float, alpha: float
    ) -> tuple[Tensor, Tensor]:
        """(slots to overwrite, newcomer indices) under selection balanced over strata."""
        # Stored first, so that ties in the stable sorts favour stored memories.
        union_salience = torch.cat([self.salience(now, alpha), new_r0])
        strata = stratum_keys(
            torch.cat([self.y, new_y]) if self.class_balanced else None,
            torch.cat([self.e, new_e]) if self.by_origin else None,
        )
        keep = class_balanced_top(union_salience, strata, self.capacity)
        evicted = (~keep[: self.capacity]).nonzero().squeeze(1)
        admitted = keep[self.capacity :].nonzero().squeeze(1)
        return evicted, admitted

    def _touch(self, slots: Tensor | None) -> None:
        """Record a write to ``slots`` (None: every slot)."""
        self.version += 1
        self.written_at[slice(None) if slots is None else slots.cpu()] = self.version

    def _write(self, slots: Tensor, idx: Tensor, new: dict[str, Tensor], now: Tensor | float) -> None:
        self._touch(slots)
        # index_copy_ rather than ``buffer[slots] = ...``: the same rows written, at half the
        # cost of advanced-index assignment (it runs every training step).
        for name, values in new.items():
            getattr(self, name).index_copy_(0, slots, values.index_select(0, idx))
        self.tau.index_fill_(0, slots, torch.as_tensor(now, dtype=TIME_DTYPE, device=self.tau.device))

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Draw min(n, size) memories uniformly without replacement: (x, y, t)."""
        idx = self.sample_slots(n, generator)
        return self.x[idx], self.y[idx], self.t[idx]

    def sample_slots(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Slots of min(n, size) memories drawn uniformly without replacement."""
        size = len(self)
        return self._permutation(size, generator)[: min(n, size)]

    def _permutation(self, m: int, generator: torch.Generator | None) -> Tensor:
        """A random permutation of range(m), drawn on the generator's device, on memory's device."""
        device = generator.device if generator is not None else self.x.device
        return torch.randperm(m, generator=generator, device=device).to(self.x.device)

    def sample_slots_split(self, n: int, recent: int, share: float, generator: torch.Generator | None = None) -> Tensor:
        """Slots of min(n, size) memories drawn without replacement, ``round(share * n)`` of them
        uniformly from those of origin ``recent`` and the rest uniformly from the others; a group
        short of its quota is topped up from the other, and where either group is empty the draw
        is uniform over all (:meth:`sample_slots`)."""
        size = len(self)
        is_recent = self.e[:size] == recent
        recent_slots, older_slots = is_recent.nonzero().squeeze(1), (~is_recent).nonzero().squeeze(1)
        if len(recent_slots) == 0 or len(older_slots) == 0:
            return self.sample_slots(n, generator)
        n = min(n, size)
        n_recent = min(len(recent_slots), round(share * n))
        n_older = min(len(older_slots), n - n_recent)
        n_recent = n - n_older  # tops up the recent side where the older one is short
        pick_recent = self._permutation(len(recent_slots), generator)[:n_recent]
        pick_older = self._permutation(len(older_slots), generator)[:n_older]
        return torch.cat([recent_slots[pick_recent], older_slots[pick_older]])

    @torch.no_grad()
    def reconsolidate(self, slots: Tensor, now: Tensor | float | None = None, r0: Tensor | None = None) -> None:
        """Re-store recalled or replayed memories: if given, ``tau <- now`` (they start fading
        afresh) and ``r0 <- r0`` (their salience refreshed, e.g. with their current loss)."""
        self._touch(slots)
        if now is not None:
            self.tau[slots] = torch.as_tensor(now, dtype=TIME_DTYPE, device=self.tau.device)
        if r0 is not None:
            self.r0[slots] = r0.detach().to(self.r0.dtype)

    @torch.no_grad()
    def reencode(self, encoder: nn.Module, batch_size: int = 512) -> None:
        """Recompute z and c from the stored x with the current encoder.

        Stored latents go stale as the encoder keeps learning; recall compares
        fresh queries against them, so they are refreshed from the raw inputs.
        The encoder runs in eval mode so that re-encoding neither updates
        normalisation statistics nor samples dropout; its modes are restored.
        """
        n = len(self)
        if n == 0 or not self.store_keys:
            return
        self._touch(None)
        modes = [(m, m.training) for m in encoder.modules()]
        encoder.eval()
        try:
            for start in range(0, n, batch_size):
                end = min(start + batch_size, n)
                z = encoder(self.x[start:end]).to(self.z.dtype)
                self.z[start:end] = z
                self.c[start:end] = F.normalize(z, dim=1)
        finally:
            for module, training in modes:
                module.training = training

    def clear(self) -> None:
        """Forget everything (buffers keep their preallocated size)."""
        self._touch(None)
        for buffer in self.buffers():
            buffer.zero_()

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._touch(None)  # load_state_dict copies into the buffers without _write
        super()._load_from_state_dict(*args, **kwargs)
