"""The URL schemes of CRL distribution points and AIA beyond HTTP: ``ldap`` and ``file``.

Pure. CryptRetrieveObjectByUrl takes ``ldap``, ``http``, ``https`` (CRL and OCSP only)
and ``file`` (WINDOWS.md §4). AD CS enterprise CAs put ``ldap:///CN=…,CN=CDP,CN=Public
Key Services,…`` first and often only: no host, so the client must first locate a
domain controller. rdptrust measures an ``ldap://`` URL (TCP connect and an anonymous
search, never a bind); an ``ldap:///`` URL only when told the domain (its DCs come from
the DNS SRV record ``_ldap._tcp.dc._msdcs.DOMAIN``); it never opens ``file`` URLs. A
retrieval it does not make is counted as a modelled wait on an assumed rule: rule
``file-url`` or ``ldap-dc-locate`` of :mod:`rdptrust.pki.rules`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from rdptrust.model.retrieval import FetchOutcome, Purpose

#: The LDAP port when the URL names none (RFC 4516 2).
LDAP_PORT = 389
#: The attribute read when an LDAP URL names none: what AD CS publishes (RFC 4523).
DEFAULT_ATTRIBUTES = {
    Purpose.CRL: "certificateRevocationList;binary",
    Purpose.AIA: "cACertificate;binary",
}
_BINARY = frozenset({"certificaterevocationlist", "authorityrevocationlist", "cacertificate"})
#: The SRV record of a domain's domain controllers (MS-ADTS 6.3.2.3; DC locator).
DC_SRV_PREFIX = "_ldap._tcp.dc._msdcs."


def scheme(url: str) -> str:
    """The URL's scheme, lower case (``""`` when it has none)."""
    head, colon, _ = url.partition(":")
    return head.lower() if colon and head.isascii() and head.isalpha() else ""


def url_host(url: str) -> str | None:
    """The host of *url*; None when it has none or cannot be read (``ldap://[x/``)."""
    try:
        return urlsplit(url).hostname or None
    except ValueError:
        return None


def fetchable(purpose: Purpose, url: str) -> bool:
    """Whether Windows would try *url* for *purpose*: OCSP over HTTP(S); a CRL over
    ``http``, ``https``, ``ldap`` or ``file``; AIA over ``http``, ``ldap`` or ``file``
    (no HTTPS for AIA: that omission is :func:`rdptrust.pki.limits.aia_urls`'s)."""
    kind = scheme(url)
    if purpose == Purpose.OCSP:
        return kind in ("http", "https")
    if purpose == Purpose.AIA:
        return kind in ("http", "ldap", "file")
    return kind in ("http", "https", "ldap", "file")


@dataclass(frozen=True)
class LdapUrl:
    """An ``ldap://host:port/dn?attributes?scope?filter`` URL (RFC 4516), read.

    ``host`` is None for ``ldap:///dn`` (the client locates a domain controller);
    ``attributes`` are those to read (the URL's, or the purpose's default);
    ``equality`` the URL's filter when it is one ``attr=value`` test (None: any entry).
    """

    host: str | None
    port: int
    dn: str
    attributes: tuple[str, ...]
    equality: tuple[str, str] | None


def _binary(attribute: str) -> str:
    # certificate attributes go as ";binary" (RFC 4523 2); AD accepts either form
    if attribute.lower() in _BINARY:
        return attribute + ";binary"
    return attribute


def parse_ldap_url(url: str, purpose: Purpose) -> LdapUrl:
    """*url* read as an LDAP URL; ValueError when it is none or is malformed."""
    if scheme(url) != "ldap":
        raise ValueError(f"not an ldap:// URL: {url}")
    try:
        parts = urlsplit(url)
        port = parts.port or LDAP_PORT
    except ValueError as exc:
        raise ValueError(f"bad host or port in {url}") from exc
    dn_part = parts.path.removeprefix("/")
    fields = parts.query.split("?") if parts.query else []
    attrs = tuple(_binary(unquote(a)) for a in (fields[0].split(",") if fields else []) if a)
    equality: tuple[str, str] | None = None
    if len(fields) > 2 and fields[2]:
        test = unquote(fields[2]).strip().removeprefix("(").removesuffix(")")
        name, eq, value = test.partition("=")
        if eq and name and value and not any(c in test for c in "&|!*()<>~"):
            equality = (name.strip(), value.strip())
    default = DEFAULT_ATTRIBUTES.get(purpose)
    return LdapUrl(
        host=parts.hostname or None,
        port=port,
        dn=unquote(dn_part),
        attributes=attrs or ((default,) if default else ()),
        equality=equality,
    )


_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


def domain_name(text: str) -> str:
    """*text* as an AD domain's DNS name, lower case, no final dot; ValueError if none."""
    value = text.strip()
    if len(value) > 253 or not _DOMAIN.fullmatch(value):
        raise ValueError(f"{text!r} is not a DNS domain name (e.g. corp.example)")
    return value.rstrip(".").lower()


def dc_srv_name(domain: str) -> str:
    """The SRV name of *domain*'s domain controllers (``_ldap._tcp.dc._msdcs.DOMAIN``)."""
    return DC_SRV_PREFIX + domain.strip().rstrip(".").lower()


def assumed_rule(url: str, outcome: FetchOutcome) -> str | None:
    """The rule whose assumed wait stands in for a retrieval rdptrust did not make:
    ``file-url`` for any ``file`` URL, ``ldap-dc-locate`` for an ``ldap:///`` URL
    (no host) that was not measured (no domain given); None when it was measured."""
    kind = scheme(url)
    if kind == "file":
        return "file-url"
    if kind == "ldap" and outcome == FetchOutcome.SKIPPED and not url_host(url):
        return "ldap-dc-locate"
    return None


def file_url_note(url: str) -> str:
    """Why a ``file`` URL is a modelled wait, in words."""
    server = url_host(url)
    where = f"the file server {server}" if server else "the local or mapped path"
    return (
        f"rdptrust does not open file URLs; an off-domain client waits on SMB for {where}"
        " until the URL time-out (assumed)"
    )


def ldap_locate_note() -> str:
    """Why an ``ldap:///`` URL not measured is a modelled wait, in words."""
    return (
        "no host in the ldap:/// URL: the client must locate a domain controller first;"
        " an off-domain client waits until the URL time-out (assumed); --domain NAME"
        " would measure the domain's DCs"
    )


def modelled_note(url: str) -> str | None:
    """The note of a retrieval rdptrust does not make (None for one it makes)."""
    kind = scheme(url)
    if kind == "file":
        return file_url_note(url)
    if kind == "ldap" and not url_host(url):
        return ldap_locate_note()
    return None


def reach_text(urls: list[str]) -> str:
    """What a network must let through for the clients to reach *urls*, by scheme: HTTP,
    LDAP (TCP 389 or the URL's port; to the DCs for ``ldap:///``), SMB for ``file``."""
    http = [u for u in urls if scheme(u) not in ("ldap", "file")]
    ldap = [u for u in urls if scheme(u) == "ldap"]
    smb = [u for u in urls if scheme(u) == "file"]
    parts = []
    if http:
        parts.append("allow HTTP to " + ", ".join(http))
    for url in ldap:
        host = url_host(url)
        try:
            port = urlsplit(url).port if host else None
        except ValueError:
            port = None
        where = f"{host} port {port or LDAP_PORT}" if host else "a domain controller (port 389)"
        parts.append(f"allow LDAP to {where} for {url}")
    if smb:
        parts.append(
            "publish the CRL over HTTP too (file URLs need SMB to the file server): "
            + ", ".join(smb)
        )
    return "; ".join(parts)
