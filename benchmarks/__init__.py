"""EpiNet Bench: streams, runner, sweeps and reports for continual-learning benchmarks."""

import warnings

# qpsolvers (pulled in by Avalanche) announces at import that it found no optional solver;
# nothing in this harness uses it.
warnings.filterwarnings("ignore", message="no QP solver found")
