"""Stopping a long-running command cleanly on Ctrl-C or SIGTERM, on every platform."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from types import FrameType


def _signals() -> tuple[signal.Signals, ...]:
    # Windows sends SIGBREAK for Ctrl-Break and for a console window closed.
    extra = getattr(signal, "SIGBREAK", None)
    return (signal.SIGINT, signal.SIGTERM, *([extra] if extra is not None else []))


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM set *stop* instead of killing the process.

    Call it from a coroutine. The loop's ``add_signal_handler`` is used where it exists
    (POSIX); the Windows Proactor loop raises NotImplementedError there, so a handler is
    installed with :func:`signal.signal` instead, which hands the stop to the loop. The
    previous handlers are restored when the block ends.
    """
    loop = asyncio.get_running_loop()

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(stop.set)

    on_loop: list[signal.Signals] = []
    previous: dict[signal.Signals, object] = {}
    for sig in _signals():
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:
            pass
        except (RuntimeError, ValueError):  # not the main thread: leave signals alone
            continue
        else:
            on_loop.append(sig)
            continue
        with contextlib.suppress(ValueError, OSError):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig in on_loop:
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(sig)
        for sig, old in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, old)  # type: ignore[arg-type]
