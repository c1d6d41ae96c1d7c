"""How a command ends: its exit code, its one error line, output into a closed pipe.

Kept apart from :mod:`rdptrust.cli.common` so that ``rdptrust --version`` and
``rdptrust --help`` load no more than this, click and the exception tree.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from typing import Any, TextIO

import click

from rdptrust.errors import StoreError
from rdptrust.model.text import redact_credentials, safe_text

EXIT_OK = 0
EXIT_WARNING = 1
EXIT_CRITICAL = 2
EXIT_UNKNOWN = 3
EXIT_USAGE = 64
#: An input file's content is not what the command reads (sysexits EX_DATAERR).
EXIT_DATA = 65
#: An input file that must exist does not (sysexits EX_NOINPUT).
EXIT_NO_INPUT = 66
#: The inventory's PostgreSQL server cannot be reached or refused the login
#: (sysexits EX_UNAVAILABLE).
EXIT_UNAVAILABLE = 69
EXIT_INTERNAL = 70
#: A file or folder cannot be created where it was asked for (sysexits EX_CANTCREAT).
EXIT_CANT_CREATE = 73
#: Reading or writing a local file failed (sysexits EX_IOERR).
EXIT_IO_ERROR = 74
#: This machine hit a limit (open files, buffer space); try again later (EX_TEMPFAIL).
EXIT_TEMPFAIL = 75


def fail(message: str, code: int) -> int:
    """Print one error line to standard error (:func:`error_line`) and return *code*."""
    error_line(message)
    return code


def error_line(message: str) -> None:
    """Print ``rdptrust: error: MESSAGE`` to standard error.

    The message may quote a host's name, a server's words or a URL: its controls are
    shown escaped and a password in a URL as ``***``.
    """
    click.echo(f"rdptrust: error: {safe_text(redact_credentials(message))}", err=True)


_CANT_CREATE_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
    }
)


def store_exit_code(exc: StoreError) -> int:
    """69 when the inventory's PostgreSQL server cannot be reached or refuses the login,
    73 when a file or folder cannot be created there (permissions, no such folder,
    read-only file system), 74 for any other local I/O failure (disk full, I/O error;
    an inventory that exists but is locked, read-only or corrupt)."""
    cause = exc.__cause__ or exc.__context__
    # psycopg's OperationalError, told by name: psycopg is imported only when used
    if type(cause).__module__.startswith("psycopg") and type(cause).__name__ == "OperationalError":
        return EXIT_UNAVAILABLE
    if isinstance(cause, OSError) and cause.errno in _CANT_CREATE_ERRNOS:
        return EXIT_CANT_CREATE
    import sqlite3  # here, not at the top: the command line starts without it

    if isinstance(cause, sqlite3.Error):
        name = getattr(cause, "sqlite_errorname", "") or ""
        if name.startswith("SQLITE_CANTOPEN"):
            return EXIT_CANT_CREATE
    return EXIT_IO_ERROR


class _ReaderGone(io.RawIOBase):
    """A file descriptor whose writes are dropped once they cannot be made.

    A reader that has gone (EPIPE) ends the output silently; any other failure (a full
    disk, a file size limit, a closed descriptor) is kept in :attr:`failure` for the
    command's end, and what follows is dropped, so the command still runs to its end.
    *fd* None stands for a standard stream the process was started without.
    """

    def __init__(self, fd: int | None) -> None:
        super().__init__()
        self._fd = fd
        self.gone = False
        self.failure: OSError | None = None

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        if self._fd is None:
            raise io.UnsupportedOperation("the stream was closed when rdptrust started")
        return self._fd

    def isatty(self) -> bool:
        return self._fd is not None and os.isatty(self._fd)

    def write(self, data: Any) -> int:
        size = len(memoryview(data))
        if self.gone:
            return size
        if self._fd is None:
            self.failure = OSError(errno.EBADF, "it was closed when rdptrust started")
            self.gone = True
            return size
        try:
            return os.write(self._fd, data)
        except BrokenPipeError:
            self.gone = True
        except OSError as exc:
            self.failure = exc
            self.gone = True
        return size


def closed_pipe_safe(stream: TextIO | None) -> TextIO:
    """*stream* rebuilt so that a closed pipe (``| head``) ends its output silently.

    Everything written after the reader went away is dropped, so the command runs to
    its end and exits with its own code, not with a BrokenPipeError. A write that fails
    otherwise (a full disk) is dropped the same way and named by :func:`write_failure`.
    A stream without a file descriptor (captured output) is returned as it is; a
    missing one (the process started with it closed: ``>&-``) becomes one whose writes
    fail.
    """
    if stream is None:
        return io.TextIOWrapper(io.BufferedWriter(_ReaderGone(None)), encoding="utf-8")
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return stream
    if not isinstance(stream, io.TextIOWrapper):
        return stream
    stream.flush()
    return io.TextIOWrapper(
        io.BufferedWriter(_ReaderGone(fd)),
        encoding=stream.encoding,
        errors=stream.errors,
        newline=None if sys.platform == "win32" else "\n",
        line_buffering=stream.line_buffering,
        write_through=stream.write_through,
    )


def write_failure(stream: TextIO) -> OSError | None:
    """Flush *stream* (from :func:`closed_pipe_safe`); the error its writes met, if any."""
    stream.flush()
    raw = getattr(getattr(stream, "buffer", None), "raw", None)
    return raw.failure if isinstance(raw, _ReaderGone) else None
