"""``--domain`` and ``--dns-server``: where ``ldap:///`` CRL and AIA URLs are measured.

AD CS writes ``ldap:///CN=…,CN=CDP,CN=Public Key Services,…`` with no host: the client
locates a domain controller first (WINDOWS.md §4). With ``--domain`` rdptrust finds the
domain's DCs through DNS SRV ``_ldap._tcp.dc._msdcs.DOMAIN`` and measures them in order;
without it the wait is modelled (rule ``ldap-dc-locate``, assumed). ``--dns-server`` asks
one DNS server instead of the system resolver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from rdptrust.net.srv import parse_nameserver
from rdptrust.pki.schemes import domain_name

F = TypeVar("F", bound=Callable[..., Any])


def _domain(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return domain_name(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _dns_server(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_nameserver(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value.strip()


def directory_options() -> tuple[Callable[[F], F], ...]:
    """The two options (click decorators), for :func:`windows_model_options`."""
    return (
        click.option(
            "--domain",
            metavar="NAME",
            default=None,
            callback=_domain,
            help="The clients' AD domain: ldap:/// CRL and AIA URLs (no host, the AD CS"
            " default) are measured against its DCs, found through DNS SRV"
            " _ldap._tcp.dc._msdcs.NAME (default: their wait is modelled, assumed).",
        ),
        click.option(
            "--dns-server",
            metavar="ADDR[:PORT]",
            default=None,
            callback=_dns_server,
            help="Ask this DNS server for the --domain SRV records instead of the system"
            " resolver (e.g. 10.0.0.53 or 127.0.0.1:5353).",
        ),
    )
