"""Opening the inventory database: the one place a connection is made.

A command that only reads (``hosts``, ``history``, ``report``) opens the file read-only
(SQLite ``mode=ro``) and only if it is what it claims to be: a regular file, not a
symbolic link, beginning with SQLite's header. So an empty file or any other file is
never turned into a database, and a link planted where the inventory should be is not
followed. (SQLite may still create the ``-wal``/``-shm`` companions of a WAL database it
reads, as every reader of such a database does; the database file is never written.
On storage where it cannot create them, a file with no ``-wal`` is read as immutable.)
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sqlite3
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rdptrust.errors import StoreError

#: The first 16 bytes of every SQLite 3 database file (sqlite.org/fileformat.html 1.3.1).
SQLITE_HEADER = b"SQLite format 3\x00"
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class Backend:
    """What the inventory needs to know of the database under it."""

    #: ``sqlite`` or ``postgresql``
    name: str
    #: the driver's exception root(s), each mapped to a StoreError
    errors: tuple[type[BaseException], ...]
    #: a constraint failed (a foreign key, a unique key)
    integrity_errors: tuple[type[BaseException], ...]
    #: one line a user can act on, for one of *errors* at the location shown
    describe: Callable[[BaseException, str], str]
    #: what ends a SELECT of rows to claim: PostgreSQL locks them and skips those another
    #: worker holds; SQLite's write transaction already excludes every other writer
    claim_lock: str = ""


def describe_error(exc: BaseException, path: str | Path) -> str:
    """One line saying what went wrong with the SQLite inventory at *path*, and what to do."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith("SQLITE_BUSY") or "locked" in text:
        return f"inventory {path} is locked by another rdptrust process; try again when it ends"
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return f"inventory {path} is read-only; make it writable or choose another with --db"
    if name.startswith("SQLITE_FULL") or "full" in text:
        return (
            f"the disk holding inventory {path} is full; free space and run again "
            "(completed results are kept)"
        )
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "not a database" in text:
        return (
            f"inventory {path} is corrupt or not an rdptrust inventory; move it aside "
            "or choose another with --db"
        )
    if text.startswith("Could not decode to UTF-8"):
        column = re.search(r"column '([^']*)'", text)
        where = f" (column {column.group(1)})" if column else ""
        return (
            f"inventory {path} holds text that is not UTF-8{where}: it was damaged or changed "
            "by another program; restore it from a copy, or move it aside"
        )
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return f"cannot open inventory {path}; check that its directory exists and is writable"
    if name.startswith("SQLITE_IOERR") or "disk I/O" in text:
        return f"inventory {path}: the disk reported an I/O error ({text})"
    return f"inventory {path}: {text}"


SQLITE = Backend("sqlite", (sqlite3.Error,), (sqlite3.IntegrityError,), describe_error)


def postgres_backend() -> Backend:
    """The PostgreSQL backend (imports psycopg: only when an inventory is on PostgreSQL)."""
    from rdptrust.store import postgres

    return Backend(
        "postgresql",
        postgres.errors(),
        postgres.integrity_errors(),
        postgres.describe_error,
        claim_lock=" FOR UPDATE SKIP LOCKED",
    )


def connect(where: Path, *, read_only: bool, lock_timeout: float) -> sqlite3.Connection:
    """A connection to the inventory at *where*; StoreError with one line when it fails."""
    try:
        if read_only:
            identity = _check_read_only(where)
            try:
                return _open_read_only(where, identity, "?mode=ro", lock_timeout)
            except sqlite3.Error as exc:
                if not _cannot_open(exc):
                    raise
                cannot_open = exc
            # A WAL database on read-only storage: SQLite needs a -shm beside it that it
            # cannot create. With no -wal (a closed inventory leaves none), the file alone
            # holds every result and nothing can change it there: read it as immutable.
            wal = where.with_name(where.name + "-wal")
            with contextlib.suppress(OSError):
                if wal.stat().st_size > 0:
                    raise StoreError(
                        f"inventory {where} is on storage rdptrust cannot write, and results "
                        f"still in {wal.name} need a -shm file beside it; open it once where "
                        "it is writable, or copy it with its -wal file to a writable folder"
                    ) from cannot_open
            return _open_read_only(where, identity, "?mode=ro&immutable=1", lock_timeout)
        return sqlite3.connect(where, timeout=lock_timeout, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(describe_error(exc, where)) from None


def _cannot_open(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith("SQLITE_CANTOPEN") or "unable to open" in str(exc)


def _open_read_only(
    where: Path, identity: tuple[int, int], query: str, lock_timeout: float
) -> sqlite3.Connection:
    db = sqlite3.connect(
        where.absolute().as_uri() + query, uri=True, timeout=lock_timeout, isolation_level=None
    )
    try:
        db.execute("PRAGMA schema_version").fetchone()
        if _identity(where) != identity:
            raise StoreError(f"inventory {where} was replaced while it was opened")
    except BaseException:
        db.close()
        raise
    return db


def _identity(where: Path) -> tuple[int, int]:
    try:
        info = os.lstat(where)
    except OSError as exc:
        raise StoreError(f"cannot read inventory {where}: {exc.strerror or exc}") from exc
    return info.st_dev, info.st_ino


def _check_read_only(where: Path) -> tuple[int, int]:
    """The file's identity, once it is known to be a regular SQLite file reached directly."""
    try:
        info = os.lstat(where)
    except FileNotFoundError:
        raise StoreError(f"no inventory at {where}: 'rdptrust scan' creates one") from None
    except OSError as exc:
        raise StoreError(f"cannot read inventory {where}: {exc.strerror or exc}") from exc
    if stat.S_ISLNK(info.st_mode):
        with contextlib.suppress(OSError):
            target = os.readlink(where)
            raise StoreError(
                f"inventory {where} is a symbolic link (to {target}); a command that only "
                "reads does not follow it: give the file itself with --db"
            )
        raise StoreError(f"inventory {where} is a symbolic link; give the file itself with --db")
    if not stat.S_ISREG(info.st_mode):
        raise StoreError(f"inventory {where} is not a regular file")
    try:
        fd = os.open(where, _READ_FLAGS)
    except OSError as exc:
        raise StoreError(f"cannot read inventory {where}: {exc.strerror or exc}") from exc
    try:
        opened = os.fstat(fd)
        header = os.read(fd, len(SQLITE_HEADER))
    finally:
        os.close(fd)
    if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
        raise StoreError(f"inventory {where} was replaced while it was opened")
    if header != SQLITE_HEADER:
        what = "an empty file" if not header else "not an SQLite database"
        raise StoreError(
            f"inventory {where} is {what}, not an rdptrust inventory; give the inventory with --db"
        )
    return info.st_dev, info.st_ino


def process_alive(pid: int) -> bool:
    """Whether process *pid* is running (a scan marked running may have been killed)."""
    if sys.platform == "win32":
        # os.kill(pid, 0) would terminate the process on Windows: ask the kernel instead.
        kernel32 = getattr(ctypes, "windll").kernel32  # noqa: B009 - absent off Windows
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return bool(kernel32.GetLastError() == 5)  # ERROR_ACCESS_DENIED: it exists
        try:
            code = ctypes.c_ulong()
            if kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return code.value == 259  # STILL_ACTIVE
            return True
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
