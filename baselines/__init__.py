"""Comparison strategies: one short module per strategy, all built through ``registry``."""
