"""A limit of the scanning machine is never recorded as a fact about a host.

Out of open files (EMFILE) or buffer space (ENOBUFS), a connection or a retrieval cannot
even be tried. The scan must not record such a host as unreachable: it lowers the hosts in
flight, tries the target again, and what it still cannot judge stays pending, with a warning
and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import sqlite3
import subprocess
import sys
from collections.abc import Collection, Generator, Sequence
from contextlib import closing
from pathlib import Path

import pytest

from fixtures.lab import LabFactory
from rdptrust.engine.scan import LOCAL_RETRIES, run_scan
from rdptrust.engine.scan_options import ScanOptions
from rdptrust.errors import LocalResourceError, local_resource_error
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import ProbeResult
from rdptrust.model.records import (
    CertificateEntry,
    CertificateRecord,
    DiagnosisRecord,
    Flushed,
    HostResult,
    ProblemRecord,
    ScanInfo,
)
from rdptrust.model.retrieval import MAX_RETRIEVAL_CONNECTIONS
from rdptrust.model.target import Target

RDPTRUST = str(Path(sys.executable).with_name("rdptrust"))


class _Inventory:
    """The scan loop's view of an inventory, in memory: what was recorded, and pending."""

    def __init__(self, targets: Sequence[Target]) -> None:
        self.targets = list(enumerate(targets))
        self.recorded: dict[int, HostResult] = {}
        self.staged: list[_Observation] = []

    def certificate(self, sha256: str) -> CertificateRecord | None:
        return None

    def certificates(self, sha256s: Collection[str]) -> dict[str, CertificateRecord]:
        return {}

    def pending_targets(self, scan_id: int) -> Generator[tuple[int, Target], None, None]:
        yield from ((seq, t) for seq, t in self.targets if seq not in self.recorded)

    def stage(
        self,
        scan_id: int,
        seq: int,
        target: Target,
        probe: ProbeResult | None,
        *,
        failure: ProbeFailure | None = None,
        diagnosis: DiagnosisRecord | None = None,
        certificate: CertificateEntry | None = None,
        problems: Sequence[ProblemRecord] = (),
    ) -> None:
        assert seq not in self.recorded, "recorded twice"
        self.recorded[seq] = HostResult(probe, failure, diagnosis)
        self.staged.append(_Observation(failure is None))

    def flush(self) -> Flushed:
        records, self.staged = self.staged, []
        return Flushed(tuple(records))  # type: ignore[arg-type]

    def finish_scan(self, scan_id: int, status: str) -> None:
        self.status = status

    def target_states(self, scan_id: int) -> dict[str, int]:
        done = len(self.recorded)
        return {"done": done, "pending": len(self.targets) - done}


class _Observation:
    def __init__(self, ok: bool) -> None:
        self.ok = ok


def _scan_info(count: int) -> ScanInfo:
    return ScanInfo(
        id=1,
        started_at=dt.datetime.now(dt.UTC),
        finished_at=None,
        status="running",
        arguments=(),
        options={},
        pid=None,
        target_count=count,
        done_count=0,
    )


def test_a_local_error_is_named_as_one() -> None:
    # Given the errors a full descriptor table and a full buffer raise
    emfile = OSError(errno.EMFILE, "Too many open files")
    wrapped = RuntimeError("connect failed")
    wrapped.__cause__ = OSError(errno.ENOBUFS, "No buffer space available")
    # Then both are found, and a refusal is not
    assert local_resource_error(emfile) is emfile
    assert local_resource_error(wrapped) is wrapped.__cause__
    assert local_resource_error(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) is None


async def test_scan_retries_with_fewer_in_flight_and_records_no_local_failure() -> None:
    # Given 40 targets where the first 12 attempts hit the open-file limit
    targets = [Target("192.0.2.1", 3389 + i) for i in range(40)]
    inventory = _Inventory(targets)
    attempts: dict[Target, int] = {}
    hits = {"left": 12, "in_flight": 0, "most": 0}

    async def observer(target: Target) -> HostResult:
        attempts[target] = attempts.get(target, 0) + 1
        hits["in_flight"] += 1
        hits["most"] = max(hits["most"], hits["in_flight"])
        try:
            await asyncio.sleep(0.01)
            if hits["left"] > 0:
                hits["left"] -= 1
                return HostResult(
                    None, ProbeFailure(LocalResourceError.kind, "this machine ran out of files")
                )
            return HostResult(None, ProbeFailure("connect", f"{target}: refused"))
        finally:
            hits["in_flight"] -= 1

    # When the scan runs with 16 in flight
    summary = await run_scan(
        inventory,  # type: ignore[arg-type]
        _scan_info(len(targets)),
        ScanOptions(concurrency=16, timeout=1),
        observer=observer,
    )

    # Then every target is recorded once, none with the local failure, and it ended done
    assert len(inventory.recorded) == 40
    kinds = {r.failure.kind for r in inventory.recorded.values() if r.failure}
    assert kinds == {"connect"}
    assert summary.status == "done"
    assert summary.unjudged == 0
    assert summary.local_limit == "this machine ran out of files"
    # and the hosts in flight were lowered, the hit targets tried again
    assert summary.concurrency < 16
    assert sum(attempts.values()) == 40 + 12


async def test_a_target_that_never_gets_a_socket_stays_pending() -> None:
    # Given a machine where no connection can ever be opened
    targets = [Target("192.0.2.1", 3389 + i) for i in range(5)]
    inventory = _Inventory(targets)
    attempts: dict[Target, int] = {}

    async def observer(target: Target) -> HostResult:
        attempts[target] = attempts.get(target, 0) + 1
        return HostResult(None, ProbeFailure(LocalResourceError.kind, "out of open files"))

    summary = await run_scan(
        inventory,  # type: ignore[arg-type]
        _scan_info(len(targets)),
        ScanOptions(concurrency=4, timeout=1),
        observer=observer,
    )

    # Then nothing is recorded, each target was tried 1 + LOCAL_RETRIES times, and the scan
    # says it could not judge them (they stay pending for --resume)
    assert inventory.recorded == {}
    assert set(attempts.values()) == {1 + LOCAL_RETRIES}
    assert summary.unjudged == 5
    assert summary.status == "interrupted"


def test_the_budget_counts_what_a_diagnosis_opens() -> None:
    # A diagnosis may hold MAX_RETRIEVAL_CONNECTIONS retrievals open beside its probe.
    assert ScanOptions(diagnose=True).sockets_per_host() >= 1 + MAX_RETRIEVAL_CONNECTIONS


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is POSIX")
async def test_out_of_files_is_a_warning_and_exit_75_not_unreachable_hosts(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    import resource

    # Given four reachable lab hosts, and a scan whose process may open too few files for
    # the connections one enumerated host needs side by side
    lab = await lab_factory(count=4)
    db = tmp_path / "inventory.sqlite3"

    def few_files() -> None:
        # enough for the interpreter, the inventory, the terminal and a socket or two
        resource.setrlimit(resource.RLIMIT_NOFILE, (FEW_FILES, FEW_FILES))

    proc = await asyncio.to_thread(
        subprocess.run,
        [
            RDPTRUST,
            "scan",
            *map(str, lab.targets),
            "--enumerate",
            "--db",
            str(db),
            "--timeout",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=few_files,
    )

    # Then the scan warns about this machine, exits 75, and records no host as failed
    assert proc.returncode == 75, proc.stderr
    assert "open files" in proc.stderr
    assert "Traceback" not in proc.stderr
    with closing(sqlite3.connect(db)) as conn:
        recorded = conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
        pending = conn.execute(
            "SELECT COUNT(*) FROM scan_targets WHERE state = 'pending'"
        ).fetchone()[0]
    assert recorded == 0
    assert pending == 4


#: File descriptors a scan process gets in the test above: its imports, event loop,
#: inventory and standard streams fit (about 17), the ~12 connections of an enumeration do not.
FEW_FILES = 20
