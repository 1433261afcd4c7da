"""SIGINT and SIGTERM as an exception, for the CLI and every sweep worker alike.

A handler raises ``Interrupted`` wherever the main thread is, so ``finally`` blocks and
``store.write_atomic``'s cleanup run; each process then exits with the shell's code for the
signal (130, 143), which ``timeout``, CI and schedulers read. Standard library only: a worker
installs it before importing anything heavy.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

EXIT_ON_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(BaseException):
    """A BaseException, like KeyboardInterrupt, so ``except Exception`` does not swallow it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return EXIT_ON_SIGNAL[self.signum]


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def raise_on_signals() -> None:
    for signum in EXIT_ON_SIGNAL:
        signal.signal(signum, _raise_interrupted)
    # A child inherits its parent's signal mask, and a sweep starts its workers with these
    # signals blocked (so that none is lost between start and bookkeeping): unblock them here.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, set(EXIT_ON_SIGNAL))


@contextmanager
def signals_deferred():
    """SIGINT and SIGTERM wait until the block is done, then raise ``Interrupted`` as usual:
    for cleanup that must not be cut short (stopping a Ray). Blocking the signals would not do
    where other threads run (Ray's): one of them takes the signal, and the main thread runs
    the handler at its next check, wherever that is."""
    caught: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: caught.append(signum)) for signum in EXIT_ON_SIGNAL}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            raise Interrupted(caught[0])
