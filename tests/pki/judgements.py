"""Crafted judgements for the problem catalog's tests: one or more per way a code is raised.

:func:`scenarios` judges hosts made at test time through the one judging function,
:func:`rdptrust.pki.judge.assessment` (with crafted probes and retrievals), and through
:func:`~rdptrust.pki.problems.judge_chain` and :func:`~rdptrust.pki.findings.probe_findings`
directly where a code is raised only there. Together they raise every code of the
catalog at every severity it allows (``tests/model/test_catalog.py`` holds them to it).
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pki.certs_for_tests import CLIENT_AUTH, NOW, Issued, hierarchy, issue, resign_rsa, rsa_key
from rdptrust.model.assessment import Assessment
from rdptrust.model.pin import PinCheck
from rdptrust.model.probe import (
    ENUMERATION_REQUESTS,
    EncryptionMethodSupport,
    Negotiation,
    ProbeResult,
    ProtocolSupport,
    StandardSecurityResult,
    Timings,
    TlsSessionInfo,
    TlsVersionSupport,
)
from rdptrust.model.problems import Problem
from rdptrust.model.retrieval import (
    Fetched,
    FetchOutcome,
    HttpResult,
    Omission,
    Purpose,
    RevocationStatus,
)
from rdptrust.model.target import Target
from rdptrust.model.windows import WindowsSettings
from rdptrust.model.wire import SecurityProtocol
from rdptrust.pki.findings import probe_findings
from rdptrust.pki.judge import assessment
from rdptrust.pki.limits import WINDOWS_LIMITS, aia_urls
from rdptrust.pki.pinning import KnownHosts, check_pin, pin_from_certificate
from rdptrust.pki.problems import judge_chain
from rdptrust.pki.trust import MAX_CANDIDATES_PER_NAME, TrustAnchors, build_path

HOST = "rdp01.example.test"
CHAIN = hierarchy(HOST, slot=7)
TRUSTED = TrustAnchors((CHAIN.root.cert,), ("test",))
UNTRUSTED = TrustAnchors((), ())
_NEGOTIATED = SecurityProtocol.SSL | SecurityProtocol.HYBRID


@dataclass(frozen=True)
class Judged:
    """One judgement: what it raised (problems, then findings) and, when it went through
    :func:`assessment`, the assessment."""

    name: str
    raised: tuple[Problem, ...]
    assessment: Assessment | None = None


def probe(
    served: Sequence[x509.Certificate] = (),
    *,
    host: str = HOST,
    accepted: frozenset[str] = frozenset({"HYBRID", "HYBRID_EX"}),
    legacy_tls: bool = False,
    standard: StandardSecurityResult | None = None,
) -> ProbeResult:
    """A probe of *host* that served *served* (no TLS when empty) and accepted *accepted*."""
    ders = tuple(c.public_bytes(serialization.Encoding.DER) for c in served)
    versions = {"TLSv1.0": legacy_tls, "TLSv1.1": legacy_tls, "TLSv1.2": True, "TLSv1.3": True}
    return ProbeResult(
        target=Target(host, 3389),
        address="127.0.0.1",
        negotiation=Negotiation(_NEGOTIATED, _NEGOTIATED if ders else None, None, False),
        tls=TlsSessionInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", ders) if ders else None,
        protocols=tuple(
            ProtocolSupport(name, request, name in accepted, None, None, None)
            for name, request in ENUMERATION_REQUESTS.items()
        ),
        tls_versions=tuple(TlsVersionSupport(v, ok, None) for v, ok in versions.items()),
        timings=Timings(total_ms=1.0),
        error=None,
        standard_security=standard,
    )


def standard_security(accepted: set[str], level: str) -> StandardSecurityResult:
    methods = tuple(
        EncryptionMethodSupport(
            m, m in accepted, m if m in accepted else "128BIT", level, None, None
        )
        for m in ("40BIT", "128BIT", "56BIT", "FIPS")
    )
    return StandardSecurityResult(methods, level, 0x00080004, "proprietary", False, 2048)


def fetched(
    purpose: Purpose,
    outcome: FetchOutcome = FetchOutcome.OK,
    *,
    elapsed_ms: float = 5.0,
    cert_index: int | None = None,
    revocation: RevocationStatus | None = None,
) -> Fetched:
    url = f"http://127.0.0.1:9/{purpose.value}"
    status = 200 if outcome is FetchOutcome.OK else None
    body = b"" if outcome is FetchOutcome.OK else None
    result = HttpResult(url, outcome, status, elapsed_ms, body, None)
    detail = None if revocation is None else f"the answer says {revocation.value}"
    subject = None if cert_index is None else f"certificate {cert_index}"
    return Fetched(purpose, url, result, cert_index, revocation, detail, subject)


def judge(
    served: Sequence[x509.Certificate],
    *,
    host: str = HOST,
    anchors: TrustAnchors = UNTRUSTED,
    pinned: x509.Certificate | None = None,
    retrievals: Sequence[Fetched] | None = None,
    probed: ProbeResult | None = None,
    now: dt.datetime = NOW,
    unreadable: str | None = None,
    disallowed: frozenset[bytes] = frozenset(),
    omitted: Sequence[Omission] = (),
) -> Assessment:
    """The assessment of a host that served *served*, as the engine would make it."""
    target = Target(host, 3389)
    result = probed if probed is not None else probe(served, host=host)
    pin: PinCheck | None = None
    path = None
    if served:
        store = KnownHosts(Path("/nonexistent/known_hosts.json"))
        if pinned is not None:
            store.add(pin_from_certificate(target, pinned, now=now))
        pin = check_pin(store, target, served[0])
        path = build_path(served, anchors)
    return assessment(
        target,
        result,
        served=list(served) if served else None,
        path=path,
        pin=pin,
        fetched=None if retrievals is None else tuple(retrievals),
        settings=WindowsSettings(),
        fetch_timeout_s=1.0,
        now=now,
        warn_days=30,
        elapsed_ms=1.0,
        unreadable=unreadable,
        disallowed=disallowed,
        omitted=omitted,
    )


def tiny_key_leaf() -> x509.Certificate:
    """A CA-issued leaf with a 512-bit RSA key (cryptography will not make one; only the
    public key is needed, so any 512-bit modulus does)."""
    modulus = (1 << 511) | secrets.randbits(511) | 1
    public = rsa.RSAPublicNumbers(65537, modulus).public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, HOST)]))
        .issuer_name(CHAIN.intermediate.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=180))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .sign(CHAIN.intermediate.key, hashes.SHA256())  # type: ignore[arg-type]
    )


def malformed_eku_leaf() -> x509.Certificate:
    """A self-signed leaf whose EKU extension cannot be decoded."""
    key = rsa_key()
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, HOST)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(9)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=90))
        .add_extension(
            x509.UnrecognizedExtension(x509.oid.ExtensionOID.EXTENDED_KEY_USAGE, b"\x30\x01"),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )


def _leaf(**options: object) -> Issued:
    return issue(HOST, issuer=CHAIN.intermediate, dns=[HOST], **options)  # type: ignore[arg-type]


def _crowded_chain() -> list[x509.Certificate]:
    """A leaf and more CA certificates under its issuer's name than path building tries
    (``MAX_CANDIDATES_PER_NAME``), none of them its real issuer (EC keys: quick to make)."""
    name = CHAIN.intermediate.cert.subject
    crowd = []
    for _ in range(MAX_CANDIDATES_PER_NAME + 4):
        key = ec.generate_private_key(ec.SECP256R1())
        crowd.append(
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
    return [CHAIN.leaf.cert, *crowd]


def _of(name: str, judged: Assessment) -> Judged:
    return Judged(name, (*judged.problems, *judged.findings), judged)


@functools.cache
def scenarios() -> tuple[Judged, ...]:
    """Every crafted judgement, named (made once per test process)."""
    chain = [CHAIN.leaf.cert, CHAIN.intermediate.cert]
    self_signed = issue("WIN-LAB01", dns=["WIN-LAB01"]).cert
    target = Target(HOST, 3389)
    found: list[Judged] = [
        _of("trusted CA chain, nothing wrong", judge(chain, anchors=TRUSTED)),
        _of("self-signed, by name", judge([self_signed], host="win-lab01")),
        _of("self-signed, by address", judge([self_signed], host="127.0.0.1")),
        _of("untrusted root", judge([*chain, CHAIN.root.cert])),
        _of("incomplete chain", judge([CHAIN.leaf.cert])),
        _of("expired", judge(chain, anchors=TRUSTED, now=NOW + dt.timedelta(days=400))),
        _of("not yet valid", judge(chain, anchors=TRUSTED, now=NOW - dt.timedelta(days=30))),
        _of("expiring soon", judge(chain, anchors=TRUSTED, now=NOW + dt.timedelta(days=170))),
        _of("CA-issued, wrong name", judge(chain, host="other.example.test", anchors=TRUSTED)),
        _of(
            "EKU for clients only",
            judge([_leaf(eku=[CLIENT_AUTH]).cert, CHAIN.intermediate.cert], anchors=TRUSTED),
        ),
        _of("1024-bit key", judge([_leaf(key=rsa_key(1024)).cert, *chain[1:]], anchors=TRUSTED)),
        _of("512-bit key", judge([tiny_key_leaf(), *chain[1:]], anchors=TRUSTED)),
        _of("undecodable EKU", judge([malformed_eku_leaf()])),
        _of("unreadable leaf", judge([], probed=probe([CHAIN.leaf.cert]), unreadable="bad DER")),
        _of("no TLS", judge([], probed=probe(accepted=frozenset({"RDP"})))),
        _of(
            "pin changed",
            judge(
                [self_signed],
                host="win-lab01",
                pinned=issue("WIN-LAB01", key=rsa_key(2048, 3)).cert,
            ),
        ),
    ]
    found.append(
        _of(
            "trusted chain, WPAD discovery finds nothing",
            judge(
                chain,
                anchors=TRUSTED,
                retrievals=[
                    fetched(Purpose.WPAD, FetchOutcome.DNS_ERROR, elapsed_ms=3.0),
                    fetched(Purpose.OCSP, cert_index=0, revocation=RevocationStatus.GOOD),
                    fetched(Purpose.OCSP, cert_index=1, revocation=RevocationStatus.GOOD),
                ],
            ),
        )
    )
    found.append(
        _of(
            "trusted chain, intermediate in the client's Disallowed store",
            judge(
                chain,
                anchors=TRUSTED,
                disallowed=frozenset(
                    {CHAIN.intermediate.cert.public_bytes(serialization.Encoding.DER)}
                ),
            ),
        )
    )
    for hash_name in ("sha1", "md5"):
        weak = resign_rsa(CHAIN.leaf.cert, CHAIN.intermediate.key, hash_name)  # type: ignore[arg-type]
        found.append(_of(f"{hash_name} signature", judge([weak, *chain[1:]], anchors=TRUSTED)))
    # diagnosis: what the retrievals the Windows client would make add
    found += [
        _of(
            "self-signed, root list black-holed",
            judge([self_signed], retrievals=[fetched(Purpose.ROOT_LIST, FetchOutcome.TIMEOUT)]),
        ),
        _of(
            "trusted chain, disallowed list black-holed",
            judge(
                chain,
                anchors=TRUSTED,
                retrievals=[fetched(Purpose.DISALLOWED_LIST, FetchOutcome.TIMEOUT)],
            ),
        ),
        _of(
            "self-signed, root list slow",
            judge([self_signed], retrievals=[fetched(Purpose.ROOT_LIST, elapsed_ms=3000.0)]),
        ),
        _of(
            "incomplete chain, AIA black-holed",
            judge([CHAIN.leaf.cert], retrievals=[fetched(Purpose.AIA, FetchOutcome.TIMEOUT)]),
        ),
        _of(
            "trusted chain, CRL black-holed",
            judge(
                chain,
                anchors=TRUSTED,
                retrievals=[
                    fetched(Purpose.CRL, FetchOutcome.TIMEOUT, cert_index=0),
                    fetched(Purpose.OCSP, cert_index=1, revocation=RevocationStatus.GOOD),
                ],
            ),
        ),
        _of(
            "trusted chain, CRL refused at once",
            judge(
                chain,
                anchors=TRUSTED,
                retrievals=[
                    fetched(Purpose.CRL, FetchOutcome.REFUSED, elapsed_ms=1.0, cert_index=0),
                    fetched(Purpose.OCSP, cert_index=1, revocation=RevocationStatus.GOOD),
                ],
            ),
        ),
        _of(
            "trusted chain, leaf revoked",
            judge(
                chain,
                anchors=TRUSTED,
                retrievals=[
                    fetched(Purpose.OCSP, cert_index=0, revocation=RevocationStatus.REVOKED)
                ],
            ),
        ),
    ]
    # findings: what the host allows besides TLS with NLA
    windows_defaults = probe(
        [CHAIN.leaf.cert, CHAIN.intermediate.cert],
        accepted=frozenset({"RDP", "SSL", "HYBRID"}),
        legacy_tls=True,
        standard=standard_security({"40BIT", "128BIT", "FIPS"}, "CLIENT_COMPATIBLE"),
    )
    found.append(
        _of(
            "trusted chain, weak host settings",
            judge(chain, anchors=TRUSTED, probed=windows_defaults),
        )
    )
    # what the retrieval limits leave out (rdptrust.pki.limits)
    found.append(
        _of(
            "AIA over HTTPS and past the URL limit",
            judge(
                [CHAIN.leaf.cert],
                retrievals=[],
                omitted=[
                    *aia_urls(
                        [f"https://aia.example.test/{n}.crt" for n in range(6)],
                        "leaf",
                        WINDOWS_LIMITS,
                    )[1]
                ],
            ),
        )
    )
    # path building stops at a limit: more candidate issuers under one name than it tries
    found.append(_of("path building limited", judge(_crowded_chain())))
    # raised only where no chain is judged (probe, a scan without a diagnosis)
    for days in (0, 170, 200):
        now = NOW + dt.timedelta(days=days)
        found.append(
            Judged(
                f"probe findings, self-signed, day {days}",
                probe_findings(probe([self_signed]), now=now),
            )
        )
    found.append(
        Judged(
            "chain judged without a certificate",
            judge_chain(
                target,
                [],
                build_path([], UNTRUSTED),
                check_pin(
                    KnownHosts(Path("/nonexistent/known_hosts.json")), target, CHAIN.leaf.cert
                ),
                now=NOW,
            ),
        )
    )
    return tuple(found)
