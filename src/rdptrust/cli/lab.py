"""``rdptrust lab``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from rdptrust.cli.common import run
from rdptrust.cli.exits import EXIT_OK
from rdptrust.cli.signals import stop_on_signals
from rdptrust.errors import LocalProtocolError, UsageError
from rdptrust.lab.certs import CertKind
from rdptrust.lab.ldap import LdapMode
from rdptrust.lab.pki import ResponderMode
from rdptrust.lab.rdp import TLS_VERSIONS, HostileMode, TlsMode, parse_protocol, parse_protocols
from rdptrust.lab.runner import MAX_COUNT, Lab, LabConfig
from rdptrust.lab.standard_security import parse_level, parse_methods
from rdptrust.model.wire import SecurityProtocol
from rdptrust.protocol.gcc import EncryptionLevel, EncryptionMethod
from rdptrust.protocol.ntlm import Version
from rdptrust.report.jsonform import dumps
from rdptrust.report.lab import lab_document

T = TypeVar("T")


def _converter(
    parse: Callable[[str], T],
) -> Callable[[click.Context, click.Parameter, str | None], T | None]:
    def convert(_ctx: click.Context, _param: click.Parameter, value: str | None) -> T | None:
        if value is None:
            return None
        try:
            return parse(value)
        except (UsageError, LocalProtocolError) as exc:
            raise click.BadParameter(str(exc)) from None

    return convert


_MODE_HELP = (
    "MODE: ok, delay:S, blackhole, refuse, 404, garbage, gzip-bomb, get-only, post-only, "
    "huge or delta."
)


def _mode_option(name: str, what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        f"--{name}",
        metavar="MODE",
        default="ok",
        show_default=True,
        callback=_converter(ResponderMode.parse),
        help=f"How the {what} answers. {_MODE_HELP}",
    )


@click.command(
    epilog="""\b
Examples:
  rdptrust lab                                   a Windows-like host with a self-signed cert
  rdptrust lab --port 33890 --cert ca --crl blackhole
                                                 CA-issued cert whose CRL never answers
  rdptrust lab --protocols RDP,SSL --require SSL TLS required, no CredSSP
  rdptrust lab --require HYBRID --ntlm-computer SRV01 --ntlm-domain CORP
  rdptrust lab --root-list delay:15              the root list arrives after 15 s
  rdptrust lab --hostile slow-drip               the Connection Confirm at one byte/s
  rdptrust lab --count 20 --latency-ms 80        20 endpoints behind an 80 ms WAN
  rdptrust lab --count 200 --distinct-certs      200 hosts, each with its own certificate
  rdptrust lab --rdp-methods 40BIT,128BIT --rdp-level low
                                                 Standard RDP Security with weak RC4
  rdptrust lab --tls-mode legacy                 TLS 1.0 host that predates RFC 5746
  rdptrust lab --cert ca --tls-mode stapled      staples the lab OCSP answer
  rdptrust lab --cert ca --tls-mode stapled-stale   staples an out-of-date one
  rdptrust lab --cert ca --ldap blackhole        AD CS-style ldap:// CRL that never answers
  rdptrust lab --cert ca --ldap dc               ldap:/// CRL; DCs listed by a local dnsmasq

\b
The first line on standard output is one JSON object (schema rdptrust.lab/1: rdp,
pki_url, root_list_url, ca_cert, certificate, ...); then the lab serves until SIGINT or
SIGTERM.""",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="First RDP port; 0 takes free ports.",
)
@click.option(
    "--count",
    type=click.IntRange(1, MAX_COUNT),
    default=1,
    show_default=True,
    help="RDP endpoints to serve (consecutive ports from --port, or free ports).",
)
@click.option(
    "--cert",
    "cert_kind",
    type=click.Choice([kind.value for kind in CertKind]),
    default=CertKind.SELF_SIGNED.value,
    show_default=True,
    help="The host certificate to make.",
)
@click.option(
    "--issuer",
    type=click.Choice(["self", "ca"]),
    default=None,
    help="Self-signed or issued by the lab CA (default: the CA only for --cert ca).",
)
@click.option(
    "--cert-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Serve this PEM chain (host certificate first) instead; needs --key-file.",
)
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), help="Its key.")
@click.option(
    "--distinct-certs",
    is_flag=True,
    help="With --count: each endpoint serves its own self-signed certificate (WIN-LAB01, "
    "WIN-LAB01-2, ...; one shared key), like a fleet.",
)
@click.option(
    "--protocols",
    default="RDP,SSL,HYBRID,HYBRID_EX",
    show_default=True,
    callback=_converter(parse_protocols),
    help="Security protocols offered.",
)
@click.option(
    "--require",
    metavar="PROTO",
    callback=_converter(parse_protocol),
    help="Refuse clients that do not ask for PROTO (SSL, HYBRID, HYBRID_EX or RDP).",
)
@click.option(
    "--no-negotiation",
    is_flag=True,
    help="Answer without negotiation data, like a host older than RDP 5.2.",
)
@_mode_option("root-list", "root list (authrootstl.cab)")
@_mode_option("aia", "AIA issuer certificate URL")
@_mode_option("crl", "CRL distribution point")
@_mode_option("ocsp", "OCSP responder")
@click.option(
    "--hostile",
    type=click.Choice([mode.value for mode in HostileMode]),
    help="Misbehave on the RDP port this way.",
)
@click.option(
    "--latency-ms",
    type=click.IntRange(0, 600_000),
    default=0,
    show_default=True,
    help="Delay before every server response (RDP and HTTP).",
)
@click.option(
    "--ntlm-computer",
    default="WIN-LAB01",
    show_default=True,
    metavar="NAME",
    help="NetBIOS computer name in the NTLM CHALLENGE.",
)
@click.option(
    "--ntlm-domain",
    default="LAB",
    show_default=True,
    metavar="NAME",
    help="NetBIOS domain name in the NTLM CHALLENGE.",
)
@click.option(
    "--ntlm-version",
    default="10.0.20348",
    show_default=True,
    metavar="M.N.BUILD",
    callback=_converter(Version.parse_text),
    help="Windows version in the NTLM CHALLENGE.",
)
@click.option(
    "--rdp-methods",
    metavar="LIST",
    callback=_converter(parse_methods),
    help="Answer Standard RDP Security (MCS Connect-Initial) with these encryption methods:"
    " 40BIT,56BIT,128BIT,FIPS (default when only --rdp-level is given: 128BIT,FIPS).",
)
@click.option(
    "--rdp-level",
    metavar="LEVEL",
    callback=_converter(parse_level),
    help="Standard RDP Security encryption level: none, low, client-compatible, high, fips"
    " (default when only --rdp-methods is given: client-compatible).",
)
@click.option(
    "--tls-min",
    type=click.Choice(list(TLS_VERSIONS)),
    default="TLSv1.2",
    show_default=True,
    help="Oldest TLS version the RDP endpoint accepts.",
)
@click.option(
    "--tls-max",
    type=click.Choice(list(TLS_VERSIONS)),
    default="TLSv1.3",
    show_default=True,
    help="Newest TLS version the RDP endpoint accepts.",
)
@click.option(
    "--tls-mode",
    type=click.Choice([mode.value for mode in TlsMode]),
    default=TlsMode.STANDARD.value,
    show_default=True,
    help="TLS server: standard; stapled (staples the lab OCSP responder's answer, needs"
    " --cert ca); stapled-stale (staples an answer two days out of date); legacy (TLS"
    " 1.0, TLS_RSA_WITH_AES_128_CBC_SHA, no renegotiation_info:"
    " a host that predates RFC 5746, such as Windows Server 2008 R2 before MS10-049).",
)
@click.option(
    "--ldap",
    "ldap_mode",
    type=click.Choice([mode.value for mode in LdapMode]),
    default=None,
    help="Put the host certificate's CRL and caIssuers on LDAP, as AD CS does (needs"
    " --cert ca): ok (a real slapd on loopback), refuse, blackhole (accepts, never"
    " answers) or dc (ldap:/// with no host; the DCs of lab.test come from a real"
    " dnsmasq: diagnose with --domain lab.test --dns-server from the first line).",
)
def lab(
    host: str,
    port: int,
    count: int,
    cert_kind: str,
    issuer: str | None,
    cert_file: Path | None,
    key_file: Path | None,
    distinct_certs: bool,
    protocols: frozenset[SecurityProtocol],
    require: SecurityProtocol | None,
    no_negotiation: bool,
    root_list: ResponderMode,
    aia: ResponderMode,
    crl: ResponderMode,
    ocsp: ResponderMode,
    hostile: str | None,
    latency_ms: int,
    ntlm_computer: str,
    ntlm_domain: str,
    ntlm_version: Version,
    rdp_methods: EncryptionMethod | None,
    rdp_level: EncryptionLevel | None,
    tls_min: str,
    tls_max: str,
    tls_mode: str,
    ldap_mode: str | None,
) -> None:
    """Serve a local RDP host and PKI responders that reproduce the stall.

    The RDP endpoint negotiates like Windows (or misbehaves on demand), serves TLS with the
    chosen certificate and answers CredSSP with an NTLM CHALLENGE naming the lab's host.
    The PKI responders serve the root list, AIA, CRL and OCSP URLs, each in its own mode.
    Everything binds 127.0.0.1 unless --host says otherwise.
    """
    config = LabConfig(
        host=host,
        port=port,
        count=count,
        cert=CertKind(cert_kind),
        cert_file=cert_file,
        key_file=key_file,
        distinct_certs=distinct_certs,
        issuer="ca" if issuer == "ca" else "self" if issuer == "self" else None,
        protocols=protocols,
        require=require,
        no_negotiation=no_negotiation,
        root_list=root_list,
        aia=aia,
        crl=crl,
        ocsp=ocsp,
        hostile=HostileMode(hostile) if hostile else None,
        latency_ms=latency_ms,
        ntlm_computer=ntlm_computer,
        ntlm_domain=ntlm_domain,
        ntlm_version=ntlm_version,
        tls_min=tls_min,
        tls_max=tls_max,
        tls_mode=TlsMode(tls_mode),
        rdp_methods=rdp_methods,
        rdp_level=rdp_level,
        ldap=LdapMode(ldap_mode) if ldap_mode else None,
    )
    run(_serve(config))
    click.get_current_context().exit(EXIT_OK)


async def _serve(config: LabConfig) -> None:
    stop = asyncio.Event()
    with stop_on_signals(stop):
        async with Lab(config) as running:
            sys.stdout.write(dumps(lab_document(running.info()), pretty=False) + "\n")
            sys.stdout.flush()
            await stop.wait()
