"""The verdict on one served chain: a list of problems, each with a severity.

Each problem's code, severities, label, meaning and fixes are in the problem catalog,
:mod:`rdptrust.model.catalog` (the README's table of problem codes is made from it).

A pinned certificate that matches counts as trusted for its host and port: it raises
no ``untrusted-root``, ``self-signed-not-pinned``, ``incomplete-chain`` or
``name-mismatch`` (the pin binds the certificate to the name the user connects to, as
mstsc's "Don't ask me again" does). Problems are ordered most severe first.

Names follow RFC 6125: DNS names in the SAN win over the CN (the CN counts only when
the SAN holds no DNS name); a wildcard stands for exactly one whole leftmost label and
needs at least two labels after it; IP targets match IP SAN entries (or, with no SAN
at all, a CN that spells the address, as Windows accepts).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from rdptrust.model import catalog
from rdptrust.model.certificate import CertificateFacts
from rdptrust.model.pin import PinCheck, PinStatus
from rdptrust.model.problems import Problem, Severity
from rdptrust.model.target import IPAddress, Target, ip_literal
from rdptrust.pki.facts import RDP_AUTHENTICATION_OID, SERVER_AUTH_OID, as_utc, certificate_facts
from rdptrust.pki.names import name_text
from rdptrust.pki.trust import ChainPath

_WEAK_HASHES = {"md2", "md4", "md5"}
_LEGACY_HASHES = {"sha1"}


def judge_chain(
    target: Target,
    served: Sequence[x509.Certificate],
    path: ChainPath,
    pin: PinCheck,
    *,
    now: dt.datetime | None = None,
    warn_days: int = 30,
    disallowed: frozenset[bytes] = frozenset(),
) -> tuple[Problem, ...]:
    """Judge the chain *target* served, as built into *path*, against the pin check *pin*.

    *disallowed* holds the DER of the certificates the client distrusts explicitly (its
    Disallowed store): one of them on the path, or served, is ``disallowed-certificate``.
    """
    if not served:
        return (
            catalog.NO_CERTIFICATE.problem(
                Severity.CRITICAL,
                f"{target} presented no certificate, so no client can check who it talks to: "
                "require TLS on the host (Security Layer SSL or Negotiate)",
            ),
        )
    moment = as_utc(now)
    leaf = served[0]
    chain = path.certificates or (leaf,)
    facts = [certificate_facts(cert, now=moment) for cert in chain]
    leaf_facts = facts[0]
    pinned = pin.status is PinStatus.MATCH
    problems: list[Problem] = []

    if pin.status is PinStatus.CHANGED:
        problems.append(_pin_changed(target, pin))
    if not pinned:
        problems.extend(_trust_problems(target, path, leaf_facts, pin))
    problems.extend(_validity_problems(facts, moment, warn_days, pinned))
    if not pinned:
        mismatch = _name_problem(target, leaf_facts)
        if mismatch is not None:
            problems.append(mismatch)
    problems.extend(_eku_problems(leaf_facts))
    problems.extend(
        _disallowed_problems(distrusted(served, path, disallowed), facts, chain, target)
    )
    problems.extend(_signature_problems(facts, path, pinned))
    problems.extend(_key_problems(facts))
    for index, item in enumerate(facts):
        if item.parse_warnings:
            problems.append(
                catalog.MALFORMED_CERTIFICATE.problem(
                    Severity.CRITICAL,
                    f"part of {_which(index, item)} cannot be decoded "
                    f"({'; '.join(item.parse_warnings)}), so Windows cannot be relied on to "
                    "accept it and its names and purposes cannot be checked: reissue it",
                )
            )
    problems.sort(key=lambda p: -p.severity.rank)
    return tuple(problems)


def distrusted(
    served: Sequence[x509.Certificate], path: ChainPath, disallowed: frozenset[bytes]
) -> tuple[x509.Certificate, ...]:
    """The certificates of *path* (or *served*) whose DER is in *disallowed*, path first."""
    if not disallowed:
        return ()
    found: dict[bytes, x509.Certificate] = {}
    for cert in (*path.certificates, *served):
        der = cert.public_bytes(serialization.Encoding.DER)
        if der in disallowed:
            found.setdefault(der, cert)
    return tuple(found.values())


def _disallowed_problems(
    found: Sequence[x509.Certificate],
    facts: Sequence[CertificateFacts],
    chain: Sequence[x509.Certificate],
    target: Target,
) -> list[Problem]:
    problems: list[Problem] = []
    for cert in found:
        index = next((i for i, c in enumerate(chain) if c == cert), None)
        item = facts[index] if index is not None else certificate_facts(cert)
        what = _which(index or 0, item) if index is not None else f"{item.subject!r}"
        problems.append(
            catalog.DISALLOWED_CERTIFICATE.problem(
                Severity.CRITICAL,
                f"{what} (SHA-1 {item.sha1}) is in the client's Untrusted Certificates "
                f"store, so Windows refuses the chain of {target}: if it was put there on "
                "purpose, give the host another certificate; if by mistake, remove it "
                f"from the client (certutil -delstore disallowed {item.sha1})",
            )
        )
    return problems


def _pin_changed(target: Target, pin: PinCheck) -> Problem:
    if pin.looks_like_recreation:
        action = (
            "this looks like the six-month recreation of the host's self-signed certificate, "
            f"not an attack: confirm the thumbprint on the host, then run "
            f"`rdptrust trust {target} --replace`"
        )
    else:
        action = (
            "this does not look like the six-month recreation and may be an interception: "
            "do not connect until the host's admin confirms the new thumbprint"
        )
    return catalog.PIN_CHANGED.problem(
        Severity.CRITICAL,
        f"the certificate of {target} is not the one pinned: {action} ({pin.explanation})",
    )


def _trust_problems(
    target: Target, path: ChainPath, leaf: CertificateFacts, pin: PinCheck
) -> list[Problem]:
    if path.anchor is not None:
        return []
    if path.missing_issuer is not None:
        issuer = _name(path.missing_issuer)
        where = (
            f"Windows must first fetch it from {', '.join(path.missing_issuer_urls)}"
            if path.missing_issuer_urls
            else "the certificate names no URL to fetch it from, so Windows cannot build the chain"
        )
        return [
            catalog.INCOMPLETE_CHAIN.problem(
                Severity.WARNING,
                f"{target} does not send the issuing certificate {issuer!r} and no trust "
                f"source holds it; {where}: install the intermediate certificate on the host "
                "so it is sent with the chain",
            )
        ]
    if not path.complete:
        return []
    if leaf.self_signed and len(path.certificates) <= 1:
        if pin.status is PinStatus.CHANGED:
            return []  # pin-changed already says it and names the fix
        return [
            catalog.SELF_SIGNED_NOT_PINNED.problem(
                Severity.WARNING,
                f"{target} presents a self-signed certificate ({leaf.subject}) that no trust "
                "source holds, so clients prompt and, with automatic root update on, wait for "
                f"the Windows root list first: pin it with `rdptrust trust {target}` (Method 1) "
                "or give the host a certificate from your CA",
            )
        ]
    root = certificate_facts(path.certificates[-1])
    return [
        catalog.UNTRUSTED_ROOT.problem(
            Severity.WARNING,
            f"the chain of {target} ends in the root {root.subject!r}, which no trust source "
            "holds, so clients prompt and, with automatic root update on, wait for the Windows "
            "root list first: distribute that root to the clients' Trusted Root store "
            "(or pass it with --ca-file)",
        )
    ]


def _validity_problems(
    facts: Sequence[CertificateFacts], now: dt.datetime, warn_days: int, pinned: bool
) -> list[Problem]:
    problems: list[Problem] = []
    for index, item in enumerate(facts):
        what = _which(index, item)
        if item.not_after < now:
            problems.append(
                catalog.EXPIRED.problem(
                    Severity.CRITICAL,
                    f"{what} expired on {item.not_after:%Y-%m-%d %H:%M} UTC "
                    f"({_ago(now - item.not_after)}): renew or replace it on the host",
                )
            )
        elif item.not_before > now:
            problems.append(
                catalog.NOT_YET_VALID.problem(
                    Severity.CRITICAL,
                    f"{what} is valid only from {item.not_before:%Y-%m-%d %H:%M} UTC: check "
                    "the clocks of the host and of this machine",
                )
            )
        elif item.not_after - now <= dt.timedelta(days=warn_days):
            action = "renew it before then"
            if index == 0 and item.self_signed:
                action = (
                    "Windows then makes a new self-signed certificate with a new key"
                    + (", which the pin will no longer match" if pinned else "")
                    + "; for a certificate that lasts, issue one from your CA "
                    "(`rdptrust ca issue`)"
                )
            problems.append(
                catalog.EXPIRING_SOON.problem(
                    Severity.WARNING,
                    f"{what} expires on {item.not_after:%Y-%m-%d} UTC, in {item.days_left} "
                    f"days: {action}",
                )
            )
    return problems


def _name_problem(target: Target, leaf: CertificateFacts) -> Problem | None:
    if leaf.parse_warnings:
        return None  # malformed-certificate says the names cannot be judged
    if name_matches(target.host, leaf.san, leaf.common_name):
        return None
    names = [entry.split(":", 1)[1] for entry in leaf.san if entry.startswith(("DNS:", "IP:"))]
    if not names and leaf.common_name:
        names = [leaf.common_name]
    self_signed = leaf.self_signed
    severity = Severity.WARNING if self_signed else Severity.CRITICAL
    if not names:
        message = (
            f"the certificate names no host at all, so it cannot match {target.host}: "
            f"reissue it with {target.host} in its subject alternative names"
        )
    elif self_signed:
        message = (
            f"the certificate is for {', '.join(names)}, not {target.host}: connect with one "
            "of those names, or pin the certificate for this name"
        )
    else:
        message = (
            f"the certificate is for {', '.join(names)}, not {target.host}: connect with one "
            f"of those names, or reissue the certificate with {target.host} in its subject "
            "alternative names"
        )
    return catalog.NAME_MISMATCH.problem(severity, message)


def name_matches(host: str, san: Sequence[str], common_name: str | None) -> bool:
    """Whether *host* is a name the certificate is for (RFC 6125, see the module docs)."""
    address = _ip(host)
    if address is not None:
        ips = [_ip(entry[3:]) for entry in san if entry.startswith("IP:")]
        if address in ips:
            return True
        has_names = any(entry.startswith(("DNS:", "IP:")) for entry in san)
        return not has_names and common_name is not None and _ip(common_name) == address
    wanted = _normalise(host)
    dns = [entry[4:] for entry in san if entry.startswith("DNS:")]
    presented = dns if dns else ([common_name] if common_name else [])
    return any(_dns_matches(wanted, _normalise(name)) for name in presented)


def _dns_matches(host: str, pattern: str) -> bool:
    if not host or not pattern:
        return False
    if "*" not in pattern:
        return host == pattern
    labels = pattern.split(".")
    if labels[0] != "*" or "*" in ".".join(labels[1:]) or len(labels) < 3:
        return False
    host_labels = host.split(".")
    if len(host_labels) != len(labels) or not host_labels[0]:
        return False
    return host_labels[1:] == labels[1:]


def _normalise(name: str) -> str:
    text = name.strip().rstrip(".").lower()
    try:
        return text.encode("idna").decode("ascii")
    except UnicodeError:
        return text


def _ip(text: str) -> IPAddress | None:
    return ip_literal(text.strip().strip("[]"))
    text = text.strip("[]")
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() and p.isascii() for p in parts):
        # dotted quad: the strict form ipaddress accepts (no leading zeros), read directly
        if any((len(p) > 1 and p[0] == "0") or int(p) > 255 for p in parts):
            return None
        a, b, c, d = (int(p) for p in parts)
        return ipaddress.IPv4Address((a << 24) | (b << 16) | (c << 8) | d)
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _eku_problems(leaf: CertificateFacts) -> list[Problem]:
    if leaf.parse_warnings or not leaf.eku:
        return []
    if SERVER_AUTH_OID in leaf.eku or RDP_AUTHENTICATION_OID in leaf.eku:
        return []
    return [
        catalog.EKU_UNSUITABLE.problem(
            Severity.CRITICAL,
            f"the certificate's extended key usage ({', '.join(leaf.eku_names)}) allows neither "
            "Server Authentication (1.3.6.1.5.5.7.3.1) nor Remote Desktop Authentication "
            "(1.3.6.1.4.1.311.54.1.2), so Windows will not use it for RDP: reissue it with "
            "one of them",
        )
    ]


def _signature_problems(
    facts: Sequence[CertificateFacts],
    path: ChainPath,
    pinned: bool,
) -> list[Problem]:
    problems: list[Problem] = []
    for index, item in enumerate(facts):
        if item.self_signed and _trusted_root(index, path, pinned):
            continue  # nobody checks a trust anchor's own signature
        hash_name = (item.signature_hash or "").lower()
        if hash_name in _WEAK_HASHES:
            severity = Severity.CRITICAL
            consequence = "Windows rejects such signatures"
        elif hash_name in _LEGACY_HASHES:
            severity = Severity.WARNING
            consequence = "SHA-1 signatures can be forged"
        else:
            continue
        problems.append(
            catalog.WEAK_SIGNATURE.problem(
                severity,
                f"{_which(index, item)} is signed with {hash_name.upper()} "
                f"({item.signature_algorithm}) and {consequence}: reissue it signed with "
                "SHA-256",
            )
        )
    return problems


def _trusted_root(index: int, path: ChainPath, pinned: bool) -> bool:
    if index == 0 and pinned:
        return True
    return path.anchor is not None and index == len(path.certificates) - 1


def _key_problems(facts: Sequence[CertificateFacts]) -> list[Problem]:
    problems: list[Problem] = []
    for index, item in enumerate(facts):
        if item.key_type not in ("RSA", "DSA") or item.key_bits is None:
            continue
        if item.key_bits >= 2048:
            continue
        severity = Severity.CRITICAL if item.key_bits < 1024 else Severity.WARNING
        consequence = (
            "Windows refuses keys under 1024 bits"
            if item.key_bits < 1024
            else "keys under 2048 bits are too weak today"
        )
        problems.append(
            catalog.WEAK_KEY.problem(
                severity,
                f"{_which(index, item)} has a {item.key_bits}-bit {item.key_type} key and "
                f"{consequence}: reissue it with a 2048-bit or larger key",
            )
        )
    return problems


def _ago(elapsed: dt.timedelta) -> str:
    days = elapsed.days
    if days < 1:
        return "less than a day ago"
    return f"{days} day{'s' if days != 1 else ''} ago"


def _which(index: int, item: CertificateFacts) -> str:
    role = "the host certificate" if index == 0 else "the CA certificate"
    return f"{role} {item.subject!r}"


def _name(name: x509.Name) -> str:
    return name_text(name)
