"""Naive fine-tuning: train on each experience in turn, nothing against forgetting (lower bound)."""

from baselines.registry import register_strategy


@register_strategy("naive")
def build(setup, options):
    return setup.strategy(setup.classifier())
