"""The scan's progress bar on standard error (only when standard error is a terminal)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rdptrust.model.records import ObservationRecord

if TYPE_CHECKING:
    from rich.progress import Progress


class ScanProgress:
    """A progress bar on standard error, shown only when standard error is a terminal."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self.errors = 0
        self._progress: Progress | None = None
        if enabled:
            # rich is imported only for a bar that is shown (a scan piped or run by
            # cron or a worker starts without it).
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]scan"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rate]:.0f} hosts/s"),
                TextColumn("{task.fields[errors]} errors"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._progress.add_task(
                "scan", total=total, completed=done, rate=0.0, errors=0
            )
            self._started = asyncio.get_running_loop().time()
            self._count = 0

    def __enter__(self) -> ScanProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, record: ObservationRecord) -> None:
        if self._progress is None:
            return
        if not record.ok:
            self.errors += 1
        self._count += 1
        elapsed = asyncio.get_running_loop().time() - self._started
        self._progress.update(
            self._task,
            advance=1,
            errors=self.errors,
            rate=self._count / elapsed if elapsed > 0 else 0.0,
        )
