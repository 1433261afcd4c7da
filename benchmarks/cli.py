"""``epinet-bench``: run | sweep | report | perf | determinism | diagnose | data.

Bad input is answered before anything heavy is imported: torch and Avalanche load only once a
command has validated its configuration, its data files and its memory budget.
"""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path

from benchmarks.backends import add_backend_flags
from benchmarks.devices import add_device_flag
from benchmarks.interrupts import Interrupted, raise_on_signals
from benchmarks.run_flags import add_run_flags, run_fields
from benchmarks.tracking import add_tracking_flags, tracking_from

DEFAULT_RESULTS = Path("results")


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes in one line (``--lr abc``), not the whole usage text. No abbreviated
    flags: with flags generated from the config, a prefix could silently change meaning."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _log(quiet: bool):
    return (lambda *a: None) if quiet else _warn


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


# ----------------------------------------------------------------------------- commands


def _threads(value: int) -> int:
    if value < 1:
        raise ValueError(f"--threads must be at least 1 (got {value})")
    return value


def cmd_data(args) -> int:
    from benchmarks.data import check_root, read_arrays

    root = check_root(args.data_root, download=not args.no_download)
    arrays = read_arrays(root)
    print(f"data root: {root}")
    print(
        f"train: {len(arrays['train_labels'])} images, test: {len(arrays['test_labels'])} images, 28x28, checksums OK"
    )
    counts = [int((arrays["train_labels"] == c).sum()) for c in range(10)]
    print("train images per class: " + ", ".join(f"{c}:{n}" for c, n in enumerate(counts)))
    return 0


def cmd_run(args) -> int:
    from benchmarks import devices
    from benchmarks.config import make_run_config
    from benchmarks.data import check_root, read_arrays
    from benchmarks.resources import check_memory_fits
    from benchmarks.store import ensure_writable, result_path

    config = make_run_config("arguments", **run_fields(args))
    tracking = tracking_from(args, args.results, config.experiment)
    threads = _threads(args.threads)
    device = devices.parse(args.device)
    root = check_root(config.data_root)
    arrays = read_arrays(root)  # fail on data before building anything; trained on below, read once
    check_memory_fits([config])
    ensure_writable(args.results)
    devices.resolve(device)  # imports torch: last, once everything cheaper is known to be right

    import torch

    from benchmarks.aggregate import format_summary, runs_frame, summary
    from benchmarks.data import tensors_from
    from benchmarks.runner import run_and_store

    torch.set_num_threads(threads)
    record = run_and_store(
        config, args.results, progress=not args.quiet, data=tensors_from(arrays, root), tracking=tracking, device=device
    )
    print(format_summary(summary(runs_frame([record]))))
    print("accuracy matrix (row i: after training experience i):")
    for row in record["accuracy_matrix"]:
        print("  " + " ".join(f"{a:.3f}" for a in row))
    print(f"saved {result_path(args.results, config)}")
    return 0


def cmd_sweep(args) -> int:
    from benchmarks import devices
    from benchmarks.backends import backend_from
    from benchmarks.config import load_sweep
    from benchmarks.data import check_root, read_arrays
    from benchmarks.resources import check_memory_fits
    from benchmarks.store import ensure_writable
    from benchmarks.sweep import sweep

    threads = _threads(args.threads)
    sweep_config = load_sweep(args.config)
    grid = sweep_config.runs()  # every grid point validates before the data root is even looked up
    backend = backend_from(args, threads, len(grid))
    tracking = tracking_from(args, args.results, sweep_config.name)
    root = check_root(args.data_root)
    configs = sweep_config.runs(data_root=str(root))
    read_arrays(root)  # check the data once, before any worker starts (workers elsewhere read the same path)
    if backend.here is not None:  # the runs share this machine's memory
        check_memory_fits(configs, concurrent=backend.here)
    ensure_writable(args.results)
    if backend.here is not None and backend.device != "auto":
        devices.resolve(backend.device)  # the GPU asked for is here (elsewhere each run checks its own)
    log = _log(args.quiet)
    report = sweep(
        configs, args.results, backend.executor, progress=not args.quiet, log=log, warn=_warn,
        rerun_stale=args.rerun_stale, tracking=tracking, device=backend.device,
    )  # fmt: skip

    from benchmarks.aggregate import format_summary, runs_frame, summary

    print(format_summary(summary(runs_frame(report.done))))
    print(
        f"{len(report.ran)} ran, {len(report.skipped)} reused, {len(report.failed)} failed;"
        f" results in {args.results}/runs"
    )
    for config, why in report.failed:
        _warn(f"failed: {config.strategy} on {config.benchmark} seed {config.seed}: {why}")
    return 1 if report.failed else 0


def cmd_report(args) -> int:
    from benchmarks.report import report

    return report(args.results_dir, update_readme_path=args.update_readme, figures=not args.no_figures, html=args.html)


def cmd_perf(args) -> int:
    if args.repeats < 1 or args.threads < 1:
        raise ValueError(f"--repeats and --threads must be at least 1 (got {args.repeats} and {args.threads})")
    from benchmarks import devices
    from benchmarks.perf import run_perf, write_results

    device = devices.parse(args.device)
    report = run_perf(
        repeats=args.repeats,
        data_root=args.data_root,
        threads=args.threads,
        quick=not args.skip_quick,
        ray=not args.skip_ray,
        device=device,
        log=_log(args.quiet),
    )
    json_path, md_path = write_results(report, args.out)
    print(report.markdown())
    print(f"wrote {json_path} and {md_path}")
    return 0


def cmd_determinism(args) -> int:
    from benchmarks.config import load_sweep
    from benchmarks.data import check_root, read_arrays
    from benchmarks.determinism import run_determinism
    from benchmarks.resources import check_memory_fits
    from benchmarks.store import ensure_writable

    if args.jobs < 1:
        raise ValueError(f"--jobs must be at least 1 (got {args.jobs})")
    configs = load_sweep(args.config).runs()
    root = check_root(args.data_root)
    read_arrays(root)
    check_memory_fits(configs, concurrent=args.jobs)
    ensure_writable(args.out)
    log = _log(args.quiet)
    table = run_determinism(args.config, args.out, args.threads, args.repeats, args.jobs, str(root), log, _warn)
    print(table)
    if args.update_readme:
        from benchmarks.markdown_blocks import splice

        splice(args.update_readme, "determinism-table", table)
    return 0


# What diagnose sets itself: it runs EpiNet, and evaluates on the validation split only.
DIAGNOSE_FIXED = {"strategy": "epinet", "eval_split": "valid"}


def cmd_diagnose(args) -> int:
    from benchmarks.config import make_run_config
    from benchmarks.data import check_root, read_arrays
    from benchmarks.resources import check_memory_fits
    from benchmarks.store import ensure_writable

    if args.every < 1 or args.probe_size < 1:
        raise ValueError(f"--every and --probe-size must be at least 1 (got {args.every} and {args.probe_size})")
    config = make_run_config("arguments", **run_fields(args), **DIAGNOSE_FIXED)
    threads = _threads(args.threads)
    root = check_root(config.data_root)
    arrays = read_arrays(root)
    check_memory_fits([config])
    ensure_writable(args.out)

    import torch

    from benchmarks.data import tensors_from
    from benchmarks.diagnostics.run import describe, diagnose, summarise, write

    torch.set_num_threads(threads)
    diagnosis = diagnose(
        config, every=args.every, probe_size=args.probe_size, data=tensors_from(arrays, root), progress=not args.quiet
    )
    out = write(diagnosis, args.out)
    print(describe(summarise(diagnosis)))
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="epinet-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, results=True, data_root=True):
        if data_root:
            p.add_argument(
                "--data-root",
                help="directory holding MNIST/raw/ (default: $EPINET_DATA_ROOT, else Avalanche's dataset location)",
            )
        if results:
            p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results directory (default: results)")
        p.add_argument(
            "-q",
            "--quiet",
            action="store_true",
            help="no progress bars or progress lines (CI); problems are still reported",
        )

    def threads(p, what):
        from benchmarks.config import DEFAULT_THREADS

        p.add_argument(
            "--threads",
            type=int,
            default=DEFAULT_THREADS,
            help=f"torch threads {what} (default {DEFAULT_THREADS}, the same in run and sweep)",
        )

    p = sub.add_parser("data", help="check a data root and print what it holds")
    common(p, results=False)
    p.add_argument(
        "--no-download", action="store_true", help="do not try torchvision's download when files are missing"
    )
    p.set_defaults(fn=cmd_data)

    p = sub.add_parser("run", help="train one strategy on one benchmark with one seed")
    common(p, data_root=False)  # --data-root comes from RunConfig
    add_run_flags(p)
    add_tracking_flags(p)
    threads(p, "of the run")
    add_device_flag(p)
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("sweep", help="run a grid from a YAML config; finished runs are reused")
    common(p)
    p.add_argument("config", type=Path, help="e.g. benchmarks/configs/quick.yaml")
    add_backend_flags(p)  # --backend, --jobs and each backend's own flags
    threads(p, "per run (the CPUs a Ray task or a Slurm array task reserves)")
    add_device_flag(p)
    p.add_argument(
        "--rerun-stale",
        action="store_true",
        help="rerun stored results made by another code version (they are moved aside, not deleted)",
    )
    add_tracking_flags(p)
    p.set_defaults(fn=cmd_sweep)

    p = sub.add_parser(
        "determinism", help="the same seed at several torch thread counts, repeated: how far results move"
    )
    common(p, results=False)
    p.add_argument("config", type=Path, help="a sweep config, e.g. benchmarks/configs/determinism.yaml")
    p.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to compare (default: 1 2)"
    )
    p.add_argument("--repeats", type=int, default=2, help="repetitions at each thread count (default 2)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_RESULTS,
        help="where determinism.{md,json} and the runs go (default: results)",
    )
    p.add_argument("--update-readme", type=Path, metavar="README", help="also fill this file's determinism-table block")
    p.set_defaults(fn=cmd_determinism)

    p = sub.add_parser(
        "diagnose",
        help="run EpiNet on the validation split and record its memory, salience, losses and recall;"
        " write tables and a figure",
    )
    common(p, results=False, data_root=False)  # --data-root comes from RunConfig
    add_run_flags(p, fixed=DIAGNOSE_FIXED)
    p.add_argument("--every", type=int, default=5, help="record every N training iterations (default 5)")
    p.add_argument(
        "--probe-size",
        type=int,
        default=2000,
        help="validation samples per experience measured at each experience end (default 2000)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_RESULTS / "diagnostics",
        help="where the run's folder of tables and figure goes (default: results/diagnostics)",
    )
    threads(p, "of the run")
    p.set_defaults(fn=cmd_diagnose)

    p = sub.add_parser("report", help="tables (Markdown, LaTeX, CSV) and figures (PNG, PDF) from finished runs")
    p.add_argument(
        "results_dir",
        nargs="?",
        type=Path,
        default=DEFAULT_RESULTS,
        metavar="RESULTS_DIR",
        help="results directory (default: results); writes RESULTS_DIR/tables and RESULTS_DIR/figures",
    )
    p.add_argument(
        "--update-readme",
        type=Path,
        metavar="README",
        help="also rewrite the main table between <!-- main-table:start --> and <!-- main-table:end --> in this file",
    )
    p.add_argument("--no-figures", action="store_true", help="tables only (faster)")
    p.add_argument(
        "--html",
        action="store_true",
        help="also write RESULTS_DIR/index.html, one self-contained page (tables, figures, runs) to open in a browser",
    )
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("perf", help="time the harness and EpiNet on this machine; write OUT/perf.json and OUT/perf.md")
    common(p, results=False)
    p.add_argument(
        "--repeats", type=int, default=5, help="timed repeats per measurement; medians are reported (default 5)"
    )
    p.add_argument(
        "--out", type=Path, default=DEFAULT_RESULTS, help="where perf.json and perf.md go (default: results)"
    )
    threads(p, "in the timing process")
    add_device_flag(p, "where the measurements train: cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument(
        "--skip-quick", action="store_true", help="skip (e) and (f), the full quick.yaml sweeps (a few minutes each)"
    )
    p.add_argument(
        "--skip-ray", action="store_true", help="skip (f), quick.yaml on an embedded Ray against (e)'s local pool"
    )
    p.set_defaults(fn=cmd_perf)
    return parser


def main(argv: list[str] | None = None) -> int:
    # SIGTERM unwinds like Ctrl-C: workers stopped, temporary files removed, exit 143 or 130.
    raise_on_signals()
    try:
        args = build_parser().parse_args(argv)
        from benchmarks.config import ConfigError
        from benchmarks.data import DataError

        try:
            return args.fn(args)
        except (ConfigError, DataError, PermissionError, ValueError) as err:
            print(f"epinet-bench: error: {err}", file=sys.stderr)
            return 2
    except (Interrupted, KeyboardInterrupt) as stop:
        print("epinet-bench: interrupted; finished runs are saved and a rerun resumes from them", file=sys.stderr)
        return stop.exit_code if isinstance(stop, Interrupted) else 130


if __name__ == "__main__":
    sys.exit(main())
