"""The ``rdptrust`` command: parsing and wiring only.

Exit codes: 0 success, 1 warning, 2 critical, 3 unknown / could not probe,
64 usage error, 65 an input file whose content is not what the command reads, 66 an
input file that must exist does not, 70 internal error (a bug: please report it with
``--debug``), 73 a file or folder cannot be created, 74 a local read or write failed,
75 this machine ran out of open files or buffer space.
Output into a pipe whose reader has gone (``| head``) is dropped: the exit code stays
the command's own.
"""

from __future__ import annotations

import importlib
import sys
from typing import NamedTuple

import click

from rdptrust import __version__
from rdptrust.cli.exits import (
    EXIT_DATA,
    EXIT_INTERNAL,
    EXIT_IO_ERROR,
    EXIT_TEMPFAIL,
    EXIT_USAGE,
    closed_pipe_safe,
    fail,
    store_exit_code,
    write_failure,
)
from rdptrust.errors import (
    DataError,
    LocalResourceError,
    RdptrustError,
    StoreError,
    UsageError,
)


class Listed(NamedTuple):
    """Where a command lives and the summary the command list shows for it."""

    where: str
    """``module:attribute`` of the click command."""
    summary: str
    """The first sentence of the command's help, as click shortens it for the list."""


#: Each command, where it lives and its summary. A module is imported only when its
#: command runs or its own help is asked, so ``rdptrust scan`` starts without the HTTP
#: client, the exporter or the CA code, and ``rdptrust --help`` without any of them.
#: tests/cli/test_startup.py checks that each summary is the command's own.
COMMANDS: dict[str, Listed] = {
    "demo": Listed(
        "rdptrust.cli.demo:demo",
        'See rdptrust find and fix the "Securing remote connection" stall on a built-in lab.',
    ),
    "probe": Listed(
        "rdptrust.cli.probe:probe",
        "Probe one RDP host: negotiation, TLS, the certificate chain and timings.",
    ),
    "diagnose": Listed(
        "rdptrust.cli.diagnose:diagnose_cmd",
        'Why does Remote Desktop hang on "Securing remote connection", and what to do.',
    ),
    "capi2": Listed(
        "rdptrust.cli.capi2:capi2",
        "Read the client's own record of a stall: the CAPI2 Operational log.",
    ),
    "client-state": Listed(
        "rdptrust.cli.client_state:client_state",
        "Read this Windows client's trust stores and chain-engine policy into "
        "rdptrust.client-state/1, for 'diagnose --client-state FILE'.",
    ),
    "policy": Listed(
        "rdptrust.cli.policy:policy",
        "Write Group Policy files for the client side (KB 2915774 Method 2), or read one.",
    ),
    "ca": Listed(
        "rdptrust.cli.ca:ca",
        "Run a small CA that issues proper RDP host certificates.",
    ),
    "trust": Listed(
        "rdptrust.cli.trust:trust",
        "Pin an RDP host's certificate and write what clients need to trust it (Method 1).",
    ),
    "check": Listed(
        "rdptrust.cli.check:check",
        "Check one RDP host's certificate as a monitoring plugin: OK, WARNING, CRITICAL, UNKNOWN.",
    ),
    "exporter": Listed(
        "rdptrust.cli.exporter:exporter",
        "Serve Prometheus metrics about RDP hosts, probing each one when it is scraped.",
    ),
    "lab": Listed(
        "rdptrust.cli.lab:lab",
        "Serve a local RDP host and PKI responders that reproduce the stall.",
    ),
    "scan": Listed(
        "rdptrust.cli.scan:scan",
        "Probe many RDP hosts at once and keep the results in the inventory.",
    ),
    "hosts": Listed(
        "rdptrust.cli.inventory:hosts",
        "List every host in the inventory with its latest state and certificate.",
    ),
    "history": Listed(
        "rdptrust.cli.inventory:history",
        "Show one host's certificate history and events (first seen, changes, reachability).",
    ),
    "report": Listed(
        "rdptrust.cli.inventory:report",
        "Write the inventory as an HTML report, CSV or JSON lines.",
    ),
    "worker": Listed(
        "rdptrust.cli.worker:worker",
        "Scan the targets queued for one site (rdptrust scan --queue), with other workers.",
    ),
    "db": Listed(
        "rdptrust.cli.db:db",
        "The inventory database: bring its schema up to date, check it, prune old rows.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands, listed in :data:`COMMANDS`, are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        listed = COMMANDS.get(cmd_name)
        if listed is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = listed.where.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{listed.where} is not a click command")
        return command

    def listed_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A stand-in for a listed command (its summary as help), or the command itself."""
        listed = COMMANDS.get(cmd_name)
        if listed is None:
            return super().get_command(ctx, cmd_name)
        return click.Command(cmd_name, help=listed.summary)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own listing, fed the stand-ins: the same rows, no command imported.
        commands = [
            (name, command)
            for name in self.list_commands(ctx)
            if (command := self.listed_command(ctx, name)) is not None and not command.hidden
        ]
        if not commands:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in commands)
        rows = [(name, command.get_short_help_str(limit)) for name, command in commands]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Run 'rdptrust COMMAND --help' for the options and examples of each command.",
)
@click.version_option(__version__, prog_name="rdptrust")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Find and fix the Remote Desktop "Securing remote connection" stall.

    rdptrust probes RDP hosts, judges their certificates the way the Windows client
    does, times every URL the client would fetch, predicts the stall and writes the fix.

    \b
    Start here:
      rdptrust demo                   see the whole story on a built-in lab, in 30 s
      rdptrust probe HOST             what the host accepts and which certificate it sends
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> None:
    """Console entry point; maps every error to one line and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = closed_pipe_safe(sys.stdout), closed_pipe_safe(sys.stderr)
    try:
        code = _run(argv, debug)
        failure = write_failure(sys.stdout)
        if failure is not None and code == 0:
            # The command did its work, but what it printed did not all arrive.
            code = fail(f"cannot write standard output: {failure.strerror}", EXIT_IO_ERROR)
    finally:
        write_failure(sys.stdout)
        write_failure(sys.stderr)
        sys.stdout, sys.stderr = streams
    sys.exit(code)


#: What click (8.2 and later) raises for a group given no command; older click prints the
#: help itself and exits 0, which the ``Exit`` branch below handles.
_NO_ARGS_IS_HELP: type[click.UsageError] = getattr(
    click.exceptions, "NoArgsIsHelpError", type("_NeverRaised", (click.UsageError,), {})
)


def _run(argv: list[str] | None, debug: bool) -> int:
    try:
        code = cli.main(args=argv, prog_name="rdptrust", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("rdptrust: interrupted", err=True)
        code = 130
    except _NO_ARGS_IS_HELP as exc:
        # ``rdptrust`` or ``rdptrust db`` alone: the help asked for by its absence, as --help
        click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
        code = 0
    except click.UsageError as exc:
        if debug:
            raise
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        code = fail(f"{exc.format_message()}{hint}", EXIT_USAGE)
    except click.ClickException as exc:
        code = fail(exc.format_message(), EXIT_USAGE)
    except DataError as exc:
        if debug:
            raise
        code = fail(str(exc), EXIT_DATA)
    except UsageError as exc:
        if debug:
            raise
        code = fail(str(exc), EXIT_USAGE)
    except StoreError as exc:
        if debug:
            raise
        code = fail(str(exc), store_exit_code(exc))
    except LocalResourceError as exc:
        if debug:
            raise
        code = fail(str(exc), EXIT_TEMPFAIL)
    except RdptrustError as exc:
        if debug:
            raise
        code = fail(str(exc), 3)
    except KeyboardInterrupt:
        click.echo("rdptrust: interrupted", err=True)
        code = 130
    except OSError as exc:
        # A local file operation no rdptrust code mapped: still the user's disk, not a bug.
        if debug:
            raise
        where = f" {exc.filename}" if exc.filename else ""
        code = fail(f"cannot use{where}: {exc.strerror or exc}", EXIT_IO_ERROR)
    except Exception as exc:
        if debug:
            raise
        code = fail(
            f"internal error: {type(exc).__name__}: {exc} (run with --debug and report it)",
            EXIT_INTERNAL,
        )
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    main()
