"""Strategy registry: built-in strategies register with a decorator, others via entry points.

A strategy is a function ``build(setup: StrategySetup, options) -> SupervisedTemplate``.
Register it with ``@register_strategy("name", options=OptionsModel)``; ``options`` is a
pydantic model of the strategy's own hyperparameters, validated before any training. Options
are strict whatever the model's own ``extra`` setting: a key that names no field is an error
listing the known ones (a typo never trains with a default and lands in the config hash).

Strategy modules keep torch and Avalanche imports inside ``build`` so that listing the
strategies and validating options (what a bad command line needs) stays fast.

Another package plugs in a strategy without editing this repository by declaring an entry
point in the group ``epinet_bench.strategies``; loading the entry point must register the
strategy (import a module that uses the decorator) or be the build function itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict

ENTRY_POINT_GROUP = "epinet_bench.strategies"
BUILTIN_MODULES = (
    "naive",
    "replay",
    "ewc",
    "joint",
    "epinet",
    "der",
    "er_ace",
    "gem",
    "agem",
    "gdumb",
    "icarl",
    "mir",
    "gss",
    "si",
    "ewc_online",
    "lwf",
)


def plugin_state_bytes(strategy) -> int:
    """The default ``memory_bytes``: the sum of ``state_bytes()`` over the strategy's plugins that
    define it (the regularisers' importances and anchors, LwF's previous model); 0 without any."""
    return sum(p.state_bytes() for p in getattr(strategy, "plugins", ()) if callable(getattr(p, "state_bytes", None)))


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class StrategySpec:
    name: str
    build: Callable[..., Any]
    options: type[BaseModel] = NoOptions
    joint: bool = False  # trains once on all experiences together (an upper bound)
    # Bytes the strategy keeps besides the network, from the built strategy
    memory_bytes: Callable[[Any], int] = plugin_state_bytes
    check: Callable[[BaseModel, int], None] | None = None  # cross-checks options against the memory budget
    # Bytes the strategy will allocate for its memory, before allocating: (options, memory, input shape) -> int
    planned_bytes: Callable[[BaseModel, int, tuple[int, ...]], int] | None = None
    reserved: dict[str, str] = field(default_factory=dict)  # keys that are not options here -> why
    # Why the strategy cannot run without experience boundaries (None: it can). A string, or a
    # function of the validated options giving one or None (replay needs them unless ``online``).
    needs_boundaries: str | Callable[[BaseModel], str | None] | None = None

    def option_names(self) -> list[str]:
        # The keys pydantic reads: a field's alias if it has one (its name too only where the
        # model populates by name); a key it would not read must not pass as known.
        by_name = bool(
            self.options.model_config.get("populate_by_name") or self.options.model_config.get("validate_by_name")
        )
        names = set()
        for name, info in self.options.model_fields.items():
            alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
            if alias is None or by_name:
                names.add(name)
            if isinstance(alias, str):
                names.add(alias)
        return sorted(names)

    def validate_options(self, options: dict[str, Any], memory: int) -> BaseModel:
        self.check_option_keys(options)
        parsed = self.options.model_validate(options)
        if self.check is not None:
            self.check(parsed, memory)
        return parsed

    def boundary_need(self, options: BaseModel) -> str | None:
        """Why this strategy with these options needs experience boundaries, or None if it does not.

        A stream without boundaries (the online protocol, a task-free scenario) delivers
        mini-experiences whose experience-level callbacks carry no task boundary; a strategy
        doing its work there (a Fisher pass, a previous model, a retraining) is not applicable."""
        if self.joint:
            return "trains once on all experiences together, not on a stream"
        need = self.needs_boundaries
        return need(options) if callable(need) else need

    def check_option_keys(self, options: dict[str, Any]) -> None:
        """ValueError naming the first reserved key, or every unknown one with the known names."""
        for key in options:
            if key in self.reserved:
                raise ValueError(self.reserved[key])
        known = self.option_names()
        unknown = sorted(set(options) - set(known))
        if unknown:
            listed = ", ".join(known) if known else "none (this strategy takes no options)"
            raise ValueError(
                f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
                f" for strategy {self.name!r}; known: {listed}"
            )


class UnknownStrategy(ValueError):
    pass


_REGISTRY: dict[str, StrategySpec] = {}
_loaded = False


def register_strategy(
    name: str,
    *,
    options: type[BaseModel] = NoOptions,
    joint: bool = False,
    memory_bytes=None,
    check=None,
    planned_bytes=None,
    reserved=None,
    needs_boundaries=None,
):
    """Decorator registering ``build(setup, options)`` under ``name``. ``needs_boundaries``: why the
    strategy cannot run on a stream without experience boundaries (a string, or a function of its
    options), None if it can: the one place each strategy's capability is declared."""

    def decorate(build):
        spec = StrategySpec(
            name,
            build,
            options,
            joint,
            memory_bytes or plugin_state_bytes,
            check,
            planned_bytes,
            dict(reserved or {}),
            needs_boundaries,
        )
        _REGISTRY[name] = spec
        return build

    return decorate


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        importlib.import_module(f"baselines.{module}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        loaded = ep.load()
        if ep.name not in _REGISTRY and callable(loaded):
            register_strategy(ep.name)(loaded)


def known_strategies() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get_strategy(name: str) -> StrategySpec:
    _load_all()
    if name not in _REGISTRY:
        raise UnknownStrategy(f"unknown strategy {name!r}; known: {', '.join(known_strategies())}")
    return _REGISTRY[name]
