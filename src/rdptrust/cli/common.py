"""Shared pieces of the command line: exit codes, error output, target arguments."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import click

from rdptrust.errors import UsageError
from rdptrust.model.target import Target, parse_target

EXIT_OK = 0
EXIT_WARNING = 1
EXIT_CRITICAL = 2
EXIT_UNKNOWN = 3
EXIT_USAGE = 64
EXIT_INTERNAL = 70

T = TypeVar("T")


def fail(message: str, code: int) -> int:
    """Print one error line to standard error and return *code*."""
    click.echo(f"rdptrust: error: {message}", err=True)
    return code


def target_argument(text: str) -> Target:
    try:
        return parse_target(text)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None


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
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(coro)
    return asyncio.run(coro)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
