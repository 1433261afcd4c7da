"""Which runs get experience boundaries, and which strategies can run without them: the one rule.

A stream without experience boundaries is the online protocol (``online: true``, any
benchmark) or a task-free scenario (``benchmarks.scenarios``: ``task_free``). Its strategy
is trained on mini-experiences (``benchmarks.online``) whose experience-level callbacks fire
every few samples and so carry no boundary. A strategy that does its work at boundaries
declares why at registration (``register_strategy(..., needs_boundaries=...)``); such a
strategy is refused on these streams, before anything runs, with that reason. Torch-free.
"""

from __future__ import annotations

from typing import Any

from baselines.registry import get_strategy
from benchmarks.scenarios import get_scenario

# The online protocol's minibatch (and mini-experience) size unless batch_size is given.
ONLINE_BATCH_SIZE = 10


def boundary_free(benchmark: str, online: bool) -> str | None:
    """What, in a run of ``benchmark``, delivers a stream without experience boundaries (None: nothing)."""
    if get_scenario(benchmark).task_free:
        return f"the task-free stream {benchmark}"
    return "the online protocol" if online else None


def not_applicable(strategy: str, options: dict[str, Any], memory: int, benchmark: str, online: bool) -> str | None:
    """Why ``strategy`` (with ``options``) cannot run on ``benchmark`` (online or not), or None if it can:
    the one rule, from the capability each strategy declares at registration."""
    protocol = boundary_free(benchmark, online)
    if protocol is None:
        return None
    spec = get_strategy(strategy)
    need = spec.boundary_need(spec.validate_options(options, memory))
    if need is None:
        return None
    return f"strategy {strategy!r} is not applicable to {protocol}, which gives no experience boundary: it {need}"
