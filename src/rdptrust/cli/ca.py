"""``rdptrust ca``: an internal CA for RDP host certificates (the lasting fix)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
import platformdirs
from cryptography.hazmat.primitives import hashes

from rdptrust.cli.common import UrlType
from rdptrust.errors import DataError, StoreError, UsageError
from rdptrust.fix.host_cert import new_password, safe_file_stem, write_host_bundle
from rdptrust.pki.ca import CaUrls, CertificateAuthority
from rdptrust.report.ca import (
    ca_crl_document,
    ca_init_document,
    ca_issue_document,
    ca_list_document,
    ca_revoke_document,
)
from rdptrust.report.jsonform import dumps


def default_ca_dir() -> Path:
    return Path(platformdirs.user_data_dir("rdptrust")) / "ca"


ca_dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="CA folder (default: rdptrust's data folder, ca/).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
#: Where clients fetch CA things: Windows follows http, https and ldap URLs.
PKI_URL = UrlType(("http", "https", "ldap"))


@click.group(
    epilog="""\b
Examples:
  rdptrust ca init --name "Contoso RDP CA" --crl-url http://pki.contoso.com/rdp.crl \\
                   --ca-issuers-url http://pki.contoso.com/rdp-ca.cer
  rdptrust ca issue rdp01.contoso.com --dns rdp01 --ip 10.0.0.5 --out rdp01/
  rdptrust ca revoke rdp01.contoso.com --reason superseded
  rdptrust ca crl            # publish crl.der at the --crl-url address
  rdptrust ca list

\b
Exit codes: 0 done, 64 usage error (no CA in the folder, a name a certificate cannot
carry), 65 the CA folder's content is damaged, its key is not its certificate's or its
certificate has expired (also a password file that is not text), 73 a file or folder
cannot be created, 74 the CA files cannot be read.""",
)
def ca() -> None:
    """Run a small CA that issues proper RDP host certificates.

    A CA-issued host certificate, whose CA the clients trust and whose CRL/OCSP URLs they
    can reach, removes the "Securing remote connection" wait for good. 'issue' writes a
    password-protected .pfx and PowerShell that installs and binds it on the host, plus
    scripts that make clients trust the CA.
    """


@ca.command("init")
@ca_dir_option
@click.option("--name", default="rdptrust RDP CA", show_default=True, help="CA common name.")
@click.option(
    "--days",
    type=click.IntRange(1, 36500),
    default=3650,
    show_default=True,
    help="Days the CA certificate is valid.",
)
@click.option(
    "--crl-url", type=PKI_URL, default=None, help="Where clients will fetch the CRL (http)."
)
@click.option("--ocsp-url", type=PKI_URL, default=None, help="OCSP responder URL, if you run one.")
@click.option(
    "--ca-issuers-url",
    type=PKI_URL,
    default=None,
    help="Where clients can fetch the CA certificate.",
)
@click.option("--force", is_flag=True, help="Replace an existing CA in the folder.")
@json_option
def init(
    directory: Path | None,
    name: str,
    days: int,
    crl_url: str | None,
    ocsp_url: str | None,
    ca_issuers_url: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Create the CA: key (0600) and certificate."""
    directory = directory or default_ca_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # A folder that cannot be made is exit 73 (like every local write), not a usage error.
        raise StoreError(f"cannot create {directory}: {exc.strerror or exc}") from exc
    authority = CertificateAuthority.init(
        directory,
        name=name,
        days=days,
        urls=CaUrls(crl=crl_url, ocsp=ocsp_url, ca_issuers=ca_issuers_url),
        force=force,
    )
    thumb = authority.certificate.fingerprint(hashes.SHA1()).hex()
    if as_json:
        click.echo(dumps(ca_init_document(directory, thumb)))
        return
    click.echo(f"Created CA {name!r} in {directory}")
    click.echo(f"  certificate {authority.cert_path} (SHA-1 {thumb})")
    click.echo(f"  private key {authority.key_path} (mode 0600: keep it safe)")
    if not crl_url:
        click.echo("  no --crl-url: issued certificates carry no revocation URL (clients skip it)")


@ca.command("issue")
@click.argument("host")
@ca_dir_option
@click.option("--dns", "dns_names", multiple=True, help="Another DNS name (repeatable).")
@click.option("--ip", "ip_addresses", multiple=True, help="An IP address name (repeatable).")
@click.option(
    "--days",
    type=click.IntRange(1, 3650),
    default=365,
    show_default=True,
    help="Days the host certificate is valid.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the files (default: ./HOST).",
)
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Read the .pfx password from this file (default: a new random one).",
)
@click.option(
    "--legacy-pfx", is_flag=True, help="3DES/SHA-1 .pfx for Windows Server 2016 and older."
)
@json_option
def issue(
    host: str,
    directory: Path | None,
    dns_names: tuple[str, ...],
    ip_addresses: tuple[str, ...],
    days: int,
    out: Path | None,
    password_file: Path | None,
    legacy_pfx: bool,
    as_json: bool,
) -> None:
    """Issue an RDP host certificate for HOST and write the install bundle."""
    authority = CertificateAuthority.load(directory or default_ca_dir())
    password = _read_password(password_file) if password_file is not None else new_password()
    issued = authority.issue(
        host, dns_names=dns_names, ip_addresses=ip_addresses, days=days, record=False
    )
    out = out or Path(safe_file_stem(host))
    files = write_host_bundle(
        out,
        host,
        issued.key,
        issued.certificate,
        authority.certificate,
        password,
        legacy_pfx=legacy_pfx,
    )
    # recorded once its key and bundle are written: a failure above leaves no record
    authority.record(issued.record)
    record = issued.record
    asked = issued.record.not_before + dt.timedelta(days=days, minutes=5)
    if record.not_after < asked - dt.timedelta(minutes=1):
        click.echo(
            f"note: the CA certificate ends {record.not_after:%Y-%m-%d}, so this certificate"
            f" does too ({days} days were asked for)",
            err=True,
        )
    if as_json:
        click.echo(dumps(ca_issue_document(issued, files)))
        return
    click.echo(f"Issued {host} (serial {record.serial:x}), valid to {record.not_after:%Y-%m-%d}")
    click.echo(f"  names: {', '.join(record.names)}")
    click.echo(f"  SHA-1 thumbprint: {record.sha1}")
    click.echo(f"On the host, run {files['install_host'].name} next to {files['pfx'].name}")
    click.echo(f"  (the .pfx password is in {files['password'].name}, mode 0600)")
    click.echo(f"On clients, run {files['trust_ca_ps1'].name} or {files['trust_ca_cmd'].name}")
    click.echo(f"Files are in {out}")


def _read_password(path: Path) -> str:
    """The .pfx password: the first line of *path*, UTF-8 or, with a byte-order mark,
    UTF-16 (Notepad's "Unicode") or UTF-8 with BOM; DataError for other bytes."""
    data = path.read_bytes()
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = data.decode("utf-16")
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not text in UTF-8 or UTF-16 (byte {exc.start}): save the password as UTF-8"
        ) from None
    lines = text.splitlines()
    password = lines[0] if lines else ""
    if not password:
        raise UsageError(f"{path} is empty")
    return password


@ca.command("revoke")
@click.argument("serial_or_host")
@ca_dir_option
@click.option(
    "--reason",
    type=click.Choice(
        [
            "unspecified",
            "key-compromise",
            "superseded",
            "cessation-of-operation",
            "affiliation-changed",
        ]
    ),
    default="unspecified",
    show_default=True,
    help="The reason the CRL gives.",
)
@json_option
def revoke(serial_or_host: str, directory: Path | None, reason: str, as_json: bool) -> None:
    """Revoke a certificate by hex serial or host name, and sign a new CRL."""
    authority = CertificateAuthority.load(directory or default_ca_dir())
    changed = authority.revoke(serial_or_host, reason=reason)
    authority.crl()
    if as_json:
        click.echo(dumps(ca_revoke_document(changed)))
        return
    for record in changed:
        click.echo(f"Revoked {record.host} serial {record.serial:x} ({reason})")
    click.echo(f"New CRL: {authority.directory / 'crl.der'} (publish it at the CRL URL)")


@ca.command("crl")
@ca_dir_option
@click.option("--days", type=click.IntRange(1, 366), default=7, show_default=True, help="Validity.")
@json_option
def crl(directory: Path | None, days: int, as_json: bool) -> None:
    """Sign a fresh CRL (crl.der and crl.pem in the CA folder)."""
    authority = CertificateAuthority.load(directory or default_ca_dir())
    new = authority.crl(days=days)
    path = authority.directory / "crl.der"
    if as_json:
        click.echo(dumps(ca_crl_document(path, new)))
        return
    click.echo(f"Wrote {path} with {len(list(new))} revoked certificate(s)")
    if authority.urls.crl:
        click.echo(f"Publish it at {authority.urls.crl}")


@ca.command("list")
@ca_dir_option
@json_option
def list_(directory: Path | None, as_json: bool) -> None:
    """List the certificates this CA issued."""
    authority = CertificateAuthority.load(directory or default_ca_dir())
    if as_json:
        click.echo(dumps(ca_list_document(authority.records)))
        return
    if not authority.records:
        click.echo("No certificates issued yet.")
    for r in authority.records:
        state = f"revoked {r.revoked_at:%Y-%m-%d} ({r.reason})" if r.revoked_at else "valid"
        click.echo(f"{r.serial:x}  {r.host}  to {r.not_after:%Y-%m-%d}  {state}")
