"""Shared pieces of the command line: output streams, option types, trust files, running."""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import click

from rdptrust.errors import (
    LocalResourceError,
    PkiError,
    StoreError,
    UsageError,
    local_limit_text,
    local_resource_error,
)
from rdptrust.model.target import Target, parse_target
from rdptrust.model.text import has_unsafe_layout, redact_credentials, safe_output

if TYPE_CHECKING:
    from rich.console import Console

    _TextParam = click.ParamType[str]
else:  # click before 8.2 has no generic ParamType
    _TextParam = click.ParamType

T = TypeVar("T")


def target_argument(text: str) -> Target:
    try:
        return parse_target(text)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None


# --- output -------------------------------------------------------------------------

#: The width rich lays out output for when standard output is a file or a pipe: wide
#: enough that no table cell is folded or cut, so every line can be copied whole.
PIPED_WIDTH = 1 << 16


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def console(*, quiet: bool = False) -> Console:
    """The rich Console every command prints its standard output with.

    On a terminal, text wraps at the terminal's width. Into a file or a pipe nothing is
    wrapped, folded or cut: fix commands, URLs and fingerprints stay on one line.
    """
    if stdout_is_terminal():
        return safe_console(highlight=False, quiet=quiet)
    return safe_console(highlight=False, quiet=quiet, soft_wrap=True, width=PIPED_WIDTH)


def safe_console(**options: Any) -> Console:
    """A rich Console that writes no control or bidi character it was given as text.

    Strings are escaped (:func:`rdptrust.model.text.safe_output`), and passwords in URLs
    redacted, before rich lays them out, so widths stay right; whatever reaches the
    buffer another way (a ``Text`` built directly) is escaped once more on its way out.
    Rich's own styles and cursor moves are separate segments and pass unchanged.
    """
    from rich.console import Console as _Console
    from rich.segment import Segment

    class _SafeConsole(_Console):
        def render_str(self, text: str, **kwargs: Any) -> Any:
            return super().render_str(safe_output(redact_credentials(text)), **kwargs)

        def _render_buffer(self, buffer: Any) -> str:
            return super()._render_buffer(
                segment
                if segment.control or not has_unsafe_layout(segment.text)
                else Segment(safe_output(segment.text), segment.style, segment.control)
                for segment in buffer
            )

    return _SafeConsole(**options)


class SafeLogFormatter(logging.Formatter):
    """Log lines with controls escaped and passwords in URLs redacted (model/text.py)."""

    def format(self, record: logging.LogRecord) -> str:
        return safe_output(redact_credentials(super().format(record)))


# --- option types -------------------------------------------------------------------


class FiniteRange(click.FloatRange):
    """A number in a range, never ``nan`` or infinite: every number option uses this.

    ``click.FloatRange`` lets ``nan`` through (it fails no comparison), and an unbounded
    one ``inf``; either would reach a time-out or a date as a value nothing can use.
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class UrlType(_TextParam):
    """An absolute URL with one of *schemes* and a host: every URL option uses this."""

    name = "url"

    def __init__(self, schemes: tuple[str, ...] = ("http", "https")) -> None:
        self.schemes = schemes

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        problem = self._problem(text)
        if problem is not None:
            self.fail(f"{text!r} is not a usable URL: {problem}", param, ctx)
        return text

    def _problem(self, text: str) -> str | None:
        if any(c.isspace() or not c.isprintable() for c in text):
            return "it contains spaces or control characters"
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises for a port that is not a number in range
        except ValueError as exc:
            return str(exc)
        names = " or ".join(f"{s}://" for s in self.schemes)
        if parts.scheme.lower() not in self.schemes:
            return f"it must start with {names}"
        if not parts.hostname:
            return "it names no host"
        return None


class InputPath(click.Path):
    """A file (or with *directory*, a folder) the command reads, checked before anything
    else runs: it must exist and *validate* (which raises PkiError or StoreError) must
    accept it; its message, not a library's, is what the user reads."""

    def __init__(
        self,
        validate: Callable[[Path], object],
        *,
        must_exist: bool = True,
        directory: bool = False,
    ) -> None:
        super().__init__(
            file_okay=not directory, dir_okay=directory, exists=must_exist, path_type=Path
        )
        self._validate = validate

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = Path(os.fsdecode(super().convert(value, param, ctx)))
        if not path.exists():
            return path
        try:
            self._validate(path)
        except (PkiError, StoreError) as exc:
            self.fail(str(exc), param, ctx)
        return path


def _read_ca_file(path: Path) -> None:
    from rdptrust.pki.trust import load_trust_anchors

    load_trust_anchors(system=False, ca_files=[path])


def _read_ca_dir(path: Path) -> None:
    from rdptrust.pki.trust import load_trust_anchors

    load_trust_anchors(system=False, ca_dirs=[path])


def _read_known_hosts(path: Path) -> None:
    from rdptrust.pki.pinning import KnownHosts

    KnownHosts.load(path, must_exist=True)


#: ``--ca-file``: a PEM or DER file that holds at least one readable certificate.
CA_FILE = InputPath(_read_ca_file)
#: ``--ca-dir``: a folder that holds at least one readable certificate file.
CA_DIR = InputPath(_read_ca_dir, directory=True)
#: ``--known-hosts`` of a command that reads pins: the store must exist and parse.
KNOWN_HOSTS = InputPath(_read_known_hosts)
#: ``--known-hosts`` of ``rdptrust trust``, which creates the store: it must parse if it exists.
KNOWN_HOSTS_TO_WRITE = InputPath(_read_known_hosts, must_exist=False)

KNOWN_HOSTS_HELP = (
    "rdptrust's pinned-host store, as 'rdptrust trust' writes it "
    "[default: known_hosts.json in rdptrust's data folder]."
)
CA_FILE_HELP = "Also trust the CA certificates in this PEM or DER file (repeatable)."
PROXY_HELP = (
    "Make every retrieval (root list, AIA, CRL, OCSP) through this static HTTP proxy, as "
    "'netsh winhttp set proxy' makes the Windows client do [default: the direct path; "
    "proxy environment variables are never read]."
)


# --- running ------------------------------------------------------------------------

#: Environment variable choosing the event loop: ``uvloop`` (the default where it is
#: installed) or ``asyncio`` (the standard library's).
EVENT_LOOP_VARIABLE = "RDPTRUST_EVENT_LOOP"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from a synchronous command.

    It runs on uvloop where that is installed (Linux and macOS; about a tenth less CPU
    per host in a scan), unless ``RDPTRUST_EVENT_LOOP=asyncio`` asks for the standard loop.
    """
    choice = os.environ.get(EVENT_LOOP_VARIABLE, "uvloop").strip().lower()
    if choice not in ("uvloop", "asyncio"):
        coro.close()
        raise UsageError(f"{EVENT_LOOP_VARIABLE} must be uvloop or asyncio, not {choice!r}")
    try:
        if choice == "uvloop":
            try:
                import uvloop
            except ImportError:
                pass
            else:
                return uvloop.run(coro)
        import asyncio  # here, not at the top: the command line starts without it

        return asyncio.run(coro)
    except (OSError, RuntimeError) as exc:
        # An event loop needs descriptors of its own (its selector, a wake-up pipe).
        local = local_resource_error(exc)
        if local is None:
            raise
        coro.close()
        raise LocalResourceError(f"cannot start: this machine {local_limit_text(local)}") from exc
