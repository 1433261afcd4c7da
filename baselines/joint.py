"""Joint training: one model trained once on all experiences together (the upper bound)."""

from baselines.registry import register_strategy


@register_strategy("joint", joint=True)
def build(setup, options):
    return setup.strategy(setup.classifier())
