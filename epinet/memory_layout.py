"""The episodic memory's buffers as shapes and item sizes, without torch.

``EpisodicMemory`` allocates its buffers from :func:`slot_fields`, and
:func:`planned_nbytes` adds up the same table, so the bytes a memory will hold can be
known (and a configuration that would exhaust RAM refused) before anything is allocated
and without importing torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

FieldKind = Literal["float", "time", "label"]

# Bytes per element of each kind. "float" follows the model's floating dtype (float32 by
# default; ``EpisodicMemory.to(torch.float64)`` doubles it); timestamps stay float64 (see
# ``salience.TIME_DTYPE``) and labels int64 whatever the model's dtype.
FLOAT32_BYTES = 4
TIME_BYTES = 8
LABEL_BYTES = 8
SIZE_COUNTER_BYTES = 8  # the int64 scalar ``size`` buffer


def slot_fields(
    input_shape: Sequence[int], latent_dim: int, num_classes: int = 0, keys: bool = True
) -> dict[str, tuple[tuple[int, ...], FieldKind]]:
    """Per-slot shape and kind of each stored field, in buffer registration order.

    ``num_classes > 0`` adds ``logits``, the model's response at storage time (EpiNet v2's
    stored responses); 0 leaves it out, so a memory that never replays responses does not
    pay for them. ``keys=False`` leaves out the latent z and its key c, which only recall
    reads: a configuration that never recalls does not store them.
    """
    fields: dict[str, tuple[tuple[int, ...], FieldKind]] = {"x": (tuple(input_shape), "float")}
    if keys:
        fields.update(z=((latent_dim,), "float"), c=((latent_dim,), "float"))
    fields |= {
        "r0": ((), "float"),
        "tau": ((), "time"),
        "y": ((), "label"),
        "t": ((), "label"),
        "e": ((), "label"),
    }
    if num_classes:
        fields["logits"] = ((num_classes,), "float")
    return fields


def planned_nbytes(
    capacity: int,
    input_shape: Sequence[int],
    latent_dim: int,
    float_bytes: int = FLOAT32_BYTES,
    num_classes: int = 0,
    keys: bool = True,
) -> int:
    """Bytes an ``EpisodicMemory(capacity, input_shape, latent_dim, num_classes=..., store_keys=keys)``
    holds (its ``nbytes``).

    ``float_bytes`` is the element size of the model's floating dtype (8 after ``.double()``).
    """
    item_bytes = {"float": float_bytes, "time": TIME_BYTES, "label": LABEL_BYTES}
    fields = slot_fields(input_shape, latent_dim, num_classes, keys).values()
    per_slot = sum(math.prod(shape) * item_bytes[kind] for shape, kind in fields)
    return capacity * per_slot + SIZE_COUNTER_BYTES
