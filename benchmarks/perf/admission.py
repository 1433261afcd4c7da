"""(d) Admission cost: a training batch of 128 offered to a full memory (500 and 10,000
items, plain and class-balanced eviction), and EpiNet's whole after-step bookkeeping
(``EpiNetModel.store``: per-sample loss, admission, clock tick) on a memory of the run's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from benchmarks.perf.setups import BATCH, LATENT, filled_model, random_memory
from benchmarks.perf.timing import Row, Timing, time_calls

CAPACITIES = (500, 10_000)


@dataclass(frozen=True)
class AdmissionCost:
    key: ClassVar[str] = "admission"

    batch: int
    calls: int
    admit: dict[int, Timing]  # capacity -> per-call time
    admit_class_balanced: dict[int, Timing]
    store: dict[int, Timing]  # capacity -> EpiNetModel.store per call
    epinet_iteration_ms: float | None = None  # an EpiNet training iteration, for the shares

    def _share(self, timing: Timing) -> str:
        if self.epinet_iteration_ms is None:
            return ""
        return f" ({100 * timing.median * 1000 / self.epinet_iteration_ms:.1f}% of an EpiNet training iteration)"

    def rows(self) -> list[Row]:
        rows = []
        for by_capacity, kind in ((self.admit, ""), (self.admit_class_balanced, ", class-balanced eviction")):
            for capacity, timing in by_capacity.items():
                rows.append(
                    Row(
                        f"(d) admission of a batch of {self.batch} into a full memory of {capacity:,}{kind}",
                        f"{timing.median * 1000:.3f} ms{self._share(timing)}",
                    )
                )
        for capacity, timing in self.store.items():
            rows.append(
                Row(
                    "(d) EpiNet's bookkeeping after each step, EpiNetModel.store (per-sample loss + admission + tick),"
                    f" memory {capacity:,}",
                    f"{timing.median * 1000:.3f} ms{self._share(timing)}",
                )
            )
        return rows

    def to_json(self) -> dict[str, Any]:
        def table(by: dict[int, Timing]) -> dict[str, Any]:
            return {str(c): t.to_json() for c, t in by.items()}

        return {
            "batch": self.batch,
            "calls": self.calls,
            "admit": table(self.admit),
            "admit_class_balanced": table(self.admit_class_balanced),
            "store": table(self.store),
            "epinet_iteration_ms": self.epinet_iteration_ms,
        }


def measure_admission(
    bench, repeats: int, capacities=CAPACITIES, epinet_iteration_ms: float | None = None, device: str = "cpu"
) -> AdmissionCost:
    calls = max(50, 10 * repeats)
    x, y, t = (part.to(device) for part in bench.train_stream[1].tensors)
    g = torch.Generator().manual_seed(2)
    admit: dict[bool, dict[int, Timing]] = {False: {}, True: {}}
    for class_balanced in (False, True):
        for capacity in capacities:
            memory = random_memory(capacity, class_balanced=class_balanced, device=device)
            clock = [1_000.0]

            def offer_batch(memory=memory, clock=clock):
                idx = torch.randint(len(y), (BATCH,), generator=g)
                clock[0] += 1
                z = torch.randn(BATCH, LATENT, generator=g).to(device)
                r0 = (torch.rand(BATCH, generator=g) * 2).to(device)
                memory.admit(x[idx], z, r0, y[idx], t[idx], clock[0], 1e-3)

            # The batch gather and random draws are timed too: microseconds beside admission.
            admit[class_balanced][capacity] = time_calls(offer_batch, calls, device=device)

    model = filled_model(bench, device=device)
    idx = torch.randint(len(y), (BATCH,), generator=g)
    with torch.no_grad():
        logits, z = model.forward_with_latent(x[idx])
    store = time_calls(lambda: model.store(x[idx], z, logits, y[idx], t[idx]), calls, device=device)
    return AdmissionCost(BATCH, calls, admit[False], admit[True], {model.config.capacity: store}, epinet_iteration_ms)
