"""EpiNet Bench: streams, runner, sweeps and reports for continual-learning benchmarks."""
