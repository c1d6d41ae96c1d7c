"""``rdptrust probe``."""

from __future__ import annotations

import click

from rdptrust.cli.common import FiniteRange, console, run, target_argument
from rdptrust.cli.exits import EXIT_OK, EXIT_UNKNOWN, error_line
from rdptrust.net.probe import probe_host
from rdptrust.pki.facts import as_utc
from rdptrust.report.jsonform import dumps
from rdptrust.report.probe import chain_facts, probe_document, render_probe


@click.command(
    epilog="""\b
Examples:
  rdptrust probe rdp01.example.com
  rdptrust probe 10.0.0.5:3390 --timeout 5
  rdptrust probe rdp01 --json | jq .certificate.sha256

\b
Exit codes: 0 probed, 3 could not probe (refused, timed out, not RDP), 64 usage error.""",
)
@click.argument("target", metavar="HOST[:PORT]")
@click.option(
    "--timeout",
    type=FiniteRange(min=0.1, max=600),
    default=10.0,
    show_default=True,
    help="Seconds for each connection (connect, negotiation and TLS together).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (schema rdptrust.probe/2)."
)
@click.option(
    "--no-enumerate",
    is_flag=True,
    help="Make only the main connection: skip the per-protocol, per-TLS-version, Standard RDP"
    " Security and NTLM connections.",
)
def probe(target: str, timeout: float, as_json: bool, no_enumerate: bool) -> None:
    """Probe one RDP host: negotiation, TLS, the certificate chain and timings.

    Connects like Remote Desktop Connection does (X.224 negotiation, then TLS on the same
    stream), shows the certificate chain the host sends, which security protocols and TLS
    versions it accepts (one connection each), and how long each phase took. Default port 3389.
    """
    parsed = target_argument(target)
    result = run(
        probe_host(
            parsed,
            timeout=timeout,
            enumerate_protocols=not no_enumerate,
            enumerate_tls_versions=not no_enumerate,
            standard_security=not no_enumerate,
            ntlm=not no_enumerate,
        )
    )
    if as_json:
        now = as_utc(None)
        click.echo(dumps(probe_document(result, chain_facts(result, now), now=now)))
    else:
        render_probe(result, console())
    if result.error is not None:
        if not as_json:
            error_line(result.error.message)
        click.get_current_context().exit(EXIT_UNKNOWN)
    click.get_current_context().exit(EXIT_OK)
