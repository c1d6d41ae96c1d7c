"""The ``rdptrust`` command: parsing and wiring only.

Exit codes: 0 success, 1 warning, 2 critical, 3 unknown / could not probe,
64 usage error, 70 internal error (a bug: please report it with ``--debug``).
"""

from __future__ import annotations

import sys

import click

from rdptrust import __version__
from rdptrust.cli.common import EXIT_INTERNAL, EXIT_USAGE, fail
from rdptrust.errors import RdptrustError, UsageError


@click.group(
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


def _register() -> None:
    from rdptrust.cli.ca import ca
    from rdptrust.cli.check import check
    from rdptrust.cli.demo import demo
    from rdptrust.cli.diagnose import diagnose_cmd
    from rdptrust.cli.exporter import exporter
    from rdptrust.cli.lab import lab
    from rdptrust.cli.policy import policy
    from rdptrust.cli.probe import probe
    from rdptrust.cli.scan import history, hosts, report, scan
    from rdptrust.cli.trust import trust

    cli.add_command(demo)
    cli.add_command(probe)
    cli.add_command(diagnose_cmd)
    cli.add_command(policy)
    cli.add_command(ca)
    cli.add_command(trust)
    cli.add_command(check)
    cli.add_command(exporter)
    cli.add_command(lab)
    cli.add_command(scan)
    cli.add_command(hosts)
    cli.add_command(history)
    cli.add_command(report)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console entry point; maps every error to one line and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
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
    except UsageError as exc:
        if debug:
            raise
        code = fail(str(exc), EXIT_USAGE)
    except RdptrustError as exc:
        if debug:
            raise
        code = fail(str(exc), 3)
    except KeyboardInterrupt:
        click.echo("rdptrust: interrupted", err=True)
        code = 130
    except Exception as exc:
        if debug:
            raise
        code = fail(
            f"internal error: {type(exc).__name__}: {exc} (run with --debug and report it)",
            EXIT_INTERNAL,
        )
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
