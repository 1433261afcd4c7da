"""``epinet-bench``: run | sweep | report | perf | data."""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from pathlib import Path

DEFAULT_RESULTS = Path("results")


def _quiet_library_warnings() -> None:
    # Avalanche's own deprecation notices and optional-solver hints say nothing about the user's run.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message="no QP solver found")
    warnings.filterwarnings("ignore", message="No loggers specified")


def cmd_data(args) -> int:
    from benchmarks.data import load_mnist, resolve_root

    root = resolve_root(args.data_root)
    mnist = load_mnist(root, download=not args.no_download)
    print(f"data root: {mnist.root}")
    print(f"train: {len(mnist.train_y)} images, test: {len(mnist.test_y)} images, 28x28, checksums OK")
    counts = mnist.train_y.bincount(minlength=10).tolist()
    print("train images per class: " + ", ".join(f"{c}:{n}" for c, n in enumerate(counts)))
    return 0


def _run_fields(args) -> dict:
    fields = {k: v for k, v in vars(args).items() if k in RUN_FLAGS and v is not None}
    if args.option:
        import yaml

        options = {}
        for item in args.option:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--option expects KEY=VALUE, got {item!r}")
            options[key] = yaml.safe_load(value)
        fields["strategy_options"] = options
    return fields


RUN_FLAGS = {"benchmark", "strategy", "seed", "epochs", "batch_size", "eval_batch_size", "lr", "optimizer", "memory", "backbone", "n_experiences", "train_per_experience", "eval_split", "data_root"}


def cmd_run(args) -> int:
    from benchmarks.aggregate import format_summary, runs_frame, summary
    from benchmarks.config import make_run_config
    from benchmarks.data import load_mnist
    from benchmarks.runner import run_and_store
    from benchmarks.store import ensure_writable, result_path

    config = make_run_config("arguments", **_run_fields(args))
    ensure_writable(args.results)
    data = load_mnist(config.data_root)  # fail on data before building anything
    record = run_and_store(config, args.results, progress=not args.quiet, data=data)
    print(format_summary(summary(runs_frame([record]))))
    print(f"accuracy matrix (row i: after training experience i):")
    for row in record["accuracy_matrix"]:
        print("  " + " ".join(f"{a:.3f}" for a in row))
    print(f"saved {result_path(args.results, config)}")
    return 0


def cmd_sweep(args) -> int:
    from benchmarks.aggregate import format_summary, runs_frame, summary
    from benchmarks.config import load_sweep
    from benchmarks.data import load_mnist, resolve_root
    from benchmarks.store import ensure_writable
    from benchmarks.sweep import LocalPool, Serial, sweep

    sweep_config = load_sweep(args.config)
    root = resolve_root(args.data_root)
    configs = sweep_config.runs(data_root=str(root))
    ensure_writable(args.results)
    load_mnist(root)  # check the data once, before any worker starts
    executor = Serial() if args.jobs == 1 else LocalPool(jobs=args.jobs)
    log = (lambda *a: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    report = sweep(configs, args.results, executor, progress=not args.quiet, log=log)
    print(format_summary(summary(runs_frame(report.done))))
    print(f"{len(report.ran)} ran, {len(report.skipped)} reused, {len(report.failed)} failed; results in {args.results}/runs")
    for config, why in report.failed:
        print(f"failed: {config.strategy} on {config.benchmark} seed {config.seed}: {why}", file=sys.stderr)
    return 1 if report.failed else 0


def cmd_report(args) -> int:
    from benchmarks.report import report

    return report(args.results_dir, update_readme_path=args.update_readme, figures=not args.no_figures)


def cmd_perf(args) -> int:
    from benchmarks.perf import run_perf, write_results

    log = (lambda *a: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    report = run_perf(repeats=args.repeats, data_root=args.data_root, threads=args.threads, quick=not args.skip_quick, log=log)
    json_path, md_path = write_results(report, args.out)
    print(report.markdown())
    print(f"wrote {json_path} and {md_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="epinet-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, results=True):
        p.add_argument("--data-root", help="directory holding MNIST/raw/ (default: $EPINET_DATA_ROOT, else Avalanche's dataset location)")
        if results:
            p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results directory (default: results)")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (CI)")

    p = sub.add_parser("data", help="check a data root and print what it holds")
    common(p, results=False)
    p.add_argument("--no-download", action="store_true", help="do not try torchvision's download when files are missing")
    p.set_defaults(fn=cmd_data)

    p = sub.add_parser("run", help="train one strategy on one benchmark with one seed")
    common(p)
    p.add_argument("--benchmark", required=True, help="split-mnist | split-mnist-task | permuted-mnist")
    p.add_argument("--strategy", required=True, help="a registered strategy (naive, replay, ewc, joint, epinet, ...)")
    p.add_argument("--seed", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--eval-batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer")
    p.add_argument("--memory", type=int, help="memory budget in items (replay buffer, EpiNet capacity)")
    p.add_argument("--backbone", help="mlp | cnn")
    p.add_argument("--n-experiences", type=int)
    p.add_argument("--train-per-experience", type=int, help="train on a seeded subset of this many samples per experience")
    p.add_argument("--eval-split", help="test (default) | valid (for choosing hyperparameters)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="strategy option, e.g. --option ewc_lambda=1000 or --option top_k=10")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("sweep", help="run a grid from a YAML config; finished runs are reused")
    common(p)
    p.add_argument("config", type=Path, help="e.g. benchmarks/configs/quick.yaml")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.set_defaults(fn=cmd_sweep)

    p = sub.add_parser("report", help="tables (Markdown, LaTeX, CSV) and figures (PNG, PDF) from finished runs")
    p.add_argument("results_dir", nargs="?", type=Path, default=DEFAULT_RESULTS, metavar="RESULTS_DIR", help="results directory (default: results); writes RESULTS_DIR/tables and RESULTS_DIR/figures")
    p.add_argument("--update-readme", type=Path, metavar="README", help="also rewrite the main table between <!-- main-table:start --> and <!-- main-table:end --> in this file")
    p.add_argument("--no-figures", action="store_true", help="tables only (faster)")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("perf", help="time the harness and EpiNet on this machine; write OUT/perf.json and OUT/perf.md")
    common(p, results=False)
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement; medians are reported (default 5)")
    p.add_argument("--out", type=Path, default=DEFAULT_RESULTS, help="where perf.json and perf.md go (default: results)")
    p.add_argument("--threads", type=int, default=1, help="torch threads in the timing process (default 1, as each sweep worker runs)")
    p.add_argument("--skip-quick", action="store_true", help="skip (e), the full quick.yaml sweep (a few minutes)")
    p.set_defaults(fn=cmd_perf)
    return parser


def _interrupt_on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    _quiet_library_warnings()
    # A killed sweep unwinds like Ctrl-C: its worker processes are stopped, not orphaned.
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    args = build_parser().parse_args(argv)
    from benchmarks.config import ConfigError
    from benchmarks.data import DataError

    try:
        if getattr(args, "jobs", 1) < 1:
            raise ValueError(f"--jobs must be at least 1 (got {args.jobs})")
        return args.fn(args)
    except (ConfigError, DataError, PermissionError, ValueError) as err:
        print(f"epinet-bench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("epinet-bench: interrupted; finished runs are saved and a rerun resumes from them", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
