"""``rdptrust trust``: KB 2915774 Method 1, pin the host certificate and write import files."""

from __future__ import annotations

from pathlib import Path

import click

from rdptrust.cli.common import (
    KNOWN_HOSTS_HELP,
    KNOWN_HOSTS_TO_WRITE,
    FiniteRange,
    run,
    target_argument,
)
from rdptrust.cli.exits import EXIT_CRITICAL, EXIT_OK, EXIT_UNKNOWN, error_line
from rdptrust.errors import UsageError
from rdptrust.fix.freerdp import default_freerdp_dir, update_known_hosts2, write_freerdp3_entry
from rdptrust.fix.method1 import write_trust_bundle
from rdptrust.model.pin import PinStatus
from rdptrust.model.target import Target
from rdptrust.model.text import safe_text
from rdptrust.net.probe import probe_host
from rdptrust.pki.facts import certificate_facts, load_certificate
from rdptrust.pki.pinning import KnownHosts, check_pin, pin_from_certificate
from rdptrust.report.jsonform import dumps
from rdptrust.report.trust import trust_document, trust_list_document


@click.command(
    epilog="""\b
Examples:
  rdptrust trust rdp01.example.com --out trust/        pin it, write .cer + import scripts
  rdptrust trust rdp01 --freerdp 2                     also write FreeRDP 2's known_hosts2
  rdptrust trust rdp01 --replace                       accept a changed certificate
  rdptrust trust --list
  rdptrust trust --remove rdp01

\b
Exit codes: 0 pinned (or listed/removed), 2 the pinned certificate changed (refused without
--replace), 3 could not probe, 64 usage error, 73 a file or folder cannot be created,
74 writing failed. When a file cannot be written, nothing is pinned.""",
)
@click.argument("target", metavar="HOST[:PORT]", required=False)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the certificate (.cer, .pem) and import scripts (.ps1, .cmd) here.",
)
@click.option("--known-hosts", type=KNOWN_HOSTS_TO_WRITE, default=None, help=KNOWN_HOSTS_HELP)
@click.option(
    "--freerdp",
    type=click.Choice(["2", "3"]),
    default=None,
    help="Also write FreeRDP's own store (2: known_hosts2; 3: server/<host>_<port>.pem).",
)
@click.option(
    "--freerdp-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=(
        "FreeRDP's config folder (default: %APPDATA%\\freerdp on Windows, else "
        "$XDG_CONFIG_HOME/freerdp or ~/.config/freerdp)."
    ),
)
@click.option("--current-user", is_flag=True, help="Scripts import into CurrentUser\\Root.")
@click.option("--replace", is_flag=True, help="Accept a certificate that differs from the pin.")
@click.option("--list", "list_", is_flag=True, help="List pinned hosts.")
@click.option("--remove", is_flag=True, help="Forget the pin of HOST[:PORT].")
@click.option(
    "--timeout",
    type=FiniteRange(min=0.1, max=600),
    default=10.0,
    show_default=True,
    help="Seconds for the connection (connect, negotiation and TLS together).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def trust(
    target: str | None,
    out: Path | None,
    known_hosts: Path | None,
    freerdp: str | None,
    freerdp_dir: Path | None,
    current_user: bool,
    replace: bool,
    list_: bool,
    remove: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Pin an RDP host's certificate and write what clients need to trust it (Method 1).

    Probes HOST, shows its certificate and thumbprint, pins it in rdptrust's store (so
    'rdptrust diagnose' treats it as trusted) and, with --out, writes the certificate and
    scripts that import it into the Windows Trusted Root store after checking its
    thumbprint. When the pinned certificate has changed, it refuses and shows old and new.
    """
    known = KnownHosts.load(known_hosts)
    ctx = click.get_current_context()
    if list_:
        if target or remove:
            raise UsageError("--list takes no HOST and no --remove")
        pins = known.pins()
        if as_json:
            click.echo(dumps(trust_list_document(pins)))
        elif not pins:
            click.echo(f"No pinned hosts in {known.path}")
        for pin in pins if not as_json else ():
            until = f"{pin.not_after:%Y-%m-%d}"
            # [v6]:port as every command writes it; the subject is the host's: escaped
            where = safe_text(str(Target(pin.host, pin.port)))
            click.echo(f"{where}  {pin.sha256}  {safe_text(pin.subject)}  until {until}")
        ctx.exit(EXIT_OK)
    if not target:
        raise UsageError("give HOST[:PORT], or --list")
    parsed = target_argument(target)
    if remove:
        removed = known.remove(parsed)
        if not removed:
            raise UsageError(f"no pin for {parsed} in {known.path}")
        known.save()
        click.echo(f"Removed the pin of {parsed}")
        ctx.exit(EXIT_OK)

    result = run(
        probe_host(parsed, timeout=timeout, enumerate_protocols=False, enumerate_tls_versions=False)
    )
    if result.error is not None or result.leaf is None:
        message = result.error.message if result.error else f"{parsed} sent no TLS certificate"
        error_line(message)
        ctx.exit(EXIT_UNKNOWN)
    assert result.leaf is not None
    cert = load_certificate(result.leaf)
    facts = certificate_facts(cert)
    check = check_pin(known, parsed, cert)
    if check.status == PinStatus.CHANGED and not replace:
        if as_json:
            refused = trust_document(parsed, facts, check, pinned=False, files={}, store=known.path)
            click.echo(dumps(refused))
        else:
            click.echo(f"REFUSED: {check.explanation}.")
            click.echo("Run again with --replace to pin the new certificate.")
        ctx.exit(EXIT_CRITICAL)
    # The files first: when one cannot be written (exit 73/74) nothing is pinned, so
    # running the command again after fixing the cause does the whole job.
    files: dict[str, Path] = {}
    if out is not None:
        files.update(write_trust_bundle(out, parsed, cert, current_user=current_user))
    if freerdp is not None:
        config = freerdp_dir or default_freerdp_dir()
        if freerdp == "2":
            files["freerdp"] = update_known_hosts2(
                config / "known_hosts2", parsed.host, parsed.port, cert
            )
        else:
            files["freerdp"] = write_freerdp3_entry(config, parsed.host, parsed.port, cert)
    if check.status != PinStatus.MATCH:
        known.add(pin_from_certificate(parsed, cert))
        known.save()
    if as_json:
        document = trust_document(parsed, facts, check, pinned=True, files=files, store=known.path)
        click.echo(dumps(document))
        ctx.exit(EXIT_OK)
    click.echo(f"{parsed} presents:")
    click.echo(f"  subject    {facts.subject}")
    click.echo(f"  issuer     {facts.issuer}{' (self-signed)' if facts.self_signed else ''}")
    click.echo(f"  valid      {facts.not_before:%Y-%m-%d} to {facts.not_after:%Y-%m-%d}")
    click.echo(f"  SHA-1      {facts.sha1}   (the thumbprint Windows shows)")
    click.echo(f"  SHA-256    {facts.sha256}")
    if check.status == PinStatus.MATCH:
        click.echo(f"Already pinned in {known.path}")
    elif check.status == PinStatus.CHANGED:
        click.echo(f"Replaced the previous pin in {known.path}")
    else:
        click.echo(f"Pinned in {known.path}")
    if files:
        click.echo("Wrote:")
        for path in files.values():
            click.echo(f"  {path}")
    if out is not None:
        click.echo(
            "On each Windows client, as the user who connects (not elevated: an elevated"
            " run imports into the admin's own store), run the .ps1 or the .cmd next to the"
            " .cer file."
            if current_user
            else "On each Windows client, run the .ps1 (elevated) or the .cmd next to the"
            " .cer file."
        )
