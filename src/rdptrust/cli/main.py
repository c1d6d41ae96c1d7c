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

import click

from rdptrust import __version__
from rdptrust.cli.common import (
    EXIT_DATA,
    EXIT_INTERNAL,
    EXIT_IO_ERROR,
    EXIT_TEMPFAIL,
    EXIT_USAGE,
    closed_pipe_safe,
    fail,
    store_exit_code,
)
from rdptrust.errors import (
    DataError,
    LocalResourceError,
    RdptrustError,
    StoreError,
    UsageError,
)

#: Each command and where it lives; a module is imported only when its command runs
#: (or when the help lists the commands), so ``rdptrust scan`` starts without the
#: HTTP client, the exporter or the CA code.
COMMANDS: dict[str, str] = {
    "demo": "rdptrust.cli.demo:demo",
    "probe": "rdptrust.cli.probe:probe",
    "diagnose": "rdptrust.cli.diagnose:diagnose_cmd",
    "capi2": "rdptrust.cli.capi2:capi2",
    "client-state": "rdptrust.cli.client_state:client_state",
    "policy": "rdptrust.cli.policy:policy",
    "ca": "rdptrust.cli.ca:ca",
    "trust": "rdptrust.cli.trust:trust",
    "check": "rdptrust.cli.check:check",
    "exporter": "rdptrust.cli.exporter:exporter",
    "lab": "rdptrust.cli.lab:lab",
    "scan": "rdptrust.cli.scan:scan",
    "hosts": "rdptrust.cli.inventory:hosts",
    "history": "rdptrust.cli.inventory:history",
    "report": "rdptrust.cli.inventory:report",
    "worker": "rdptrust.cli.worker:worker",
    "db": "rdptrust.cli.db:db",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, from :data:`COMMANDS`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = where.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{where} is not a click command")
        return command


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
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams
    sys.exit(code)


def _run(argv: list[str] | None, debug: bool) -> int:
    try:
        code = cli.main(args=argv, prog_name="rdptrust", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("rdptrust: interrupted", err=True)
        code = 130
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
