"""``epinet-bench run``'s flags, generated from ``RunConfig``'s fields (one list of settings).

Each field becomes a flag with the field's description as help; values reach ``RunConfig`` as
strings and are validated there, so every bad value gets the same one-line error.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection

# strategy_options come as repeated --option KEY=VALUE; role and reference belong to sweep YAMLs.
NOT_FLAGS = {"strategy_options", "role", "reference"}


def _flag_fields():
    from benchmarks.config import RunConfig

    return {name: info for name, info in RunConfig.model_fields.items() if name not in NOT_FLAGS}


def add_run_flags(parser: argparse.ArgumentParser, fixed: Collection[str] = ()) -> None:
    """One flag per RunConfig field, help from the field's description; values are strings
    that RunConfig validates, so every bad value gets the same one-line error. Fields in
    ``fixed`` get no flag: the command sets them itself (``diagnose`` runs EpiNet on the
    validation split only), and ``run_fields`` leaves them out."""
    from benchmarks.scenarios import BENCHMARKS
    from epinet.backbones import BACKBONES

    choices = {"benchmark": BENCHMARKS, "backbone": sorted(BACKBONES)}  # from their registries
    for name, info in _flag_fields().items():
        if name in fixed:
            continue
        flag = "--" + name.replace("_", "-")
        help_text = " | ".join(choices[name]) if name in choices else info.description or ""
        if info.annotation is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            said = info.is_required() or "default" in help_text  # the description already says it
            default = "" if said else f" (default: {info.default})"
            parser.add_argument(
                flag, dest=name, required=info.is_required(), metavar=name.upper(), help=help_text + default
            )
    parser.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="strategy option, e.g. --option ewc_lambda=1000 (YAML value)",
    )


def run_fields(args) -> dict:
    fields = {name: getattr(args, name) for name in _flag_fields() if getattr(args, name, None) is not None}
    if args.option:
        import yaml

        options = {}
        for item in args.option:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValueError(f"--option expects KEY=VALUE, got {item!r}")
            options[key] = yaml.safe_load(value)
        fields["strategy_options"] = options
    return fields
