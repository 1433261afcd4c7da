"""EpiNet Bench: streams, runner, sweeps and reports for continual-learning benchmarks."""

from benchmarks.quiet import quiet_library_warnings

# Before anything imports Avalanche: qpsolvers (pulled in by it) warns at import time.
quiet_library_warnings()
