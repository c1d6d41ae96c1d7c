"""The verdict per chain: every problem code raised where it should be, and not elsewhere."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from certs_for_tests import (
    CLIENT_AUTH,
    NOW,
    RDP_EKU,
    SERVER_AUTH,
    Issued,
    ec_key,
    hierarchy,
    issue,
    resign_rsa,
    rsa_key,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from rdptrust.model.catalog import lookup
from rdptrust.model.problems import Problem, Severity, verdict
from rdptrust.model.target import Target
from rdptrust.pki.pinning import KnownHosts, check_pin, pin_from_certificate
from rdptrust.pki.problems import judge_chain, name_matches
from rdptrust.pki.trust import TrustAnchors, build_path

HOST = "rdp01.example.test"
CHAIN = hierarchy(HOST)
TRUST_CHAIN = TrustAnchors((CHAIN.root.cert,), ("test",))
NONE = TrustAnchors((), ())


def judge(
    served: Sequence[x509.Certificate],
    *,
    host: str = HOST,
    anchors: TrustAnchors = NONE,
    pinned: x509.Certificate | None = None,
    extra: Sequence[x509.Certificate] = (),
    now: dt.datetime = NOW,
    warn_days: int = 30,
) -> tuple[Problem, ...]:
    target = Target(host, 3389)
    store = KnownHosts(Path("/nonexistent/known_hosts.json"))
    if pinned is not None:
        store.add(pin_from_certificate(target, pinned, now=now))
    path = build_path(served, anchors, extra)
    check = check_pin(store, target, served[0])
    return judge_chain(target, served, path, check, now=now, warn_days=warn_days)


def codes(problems: Sequence[Problem]) -> dict[str, Severity]:
    found: dict[str, Severity] = {}
    for problem in problems:
        assert problem.message, problem
        assert "\n" not in problem.message
        assert problem.severity in lookup(problem.code).severities, problem
        found.setdefault(problem.code, problem.severity)
    return found


def served_chain() -> list[x509.Certificate]:
    return [CHAIN.leaf.cert, CHAIN.intermediate.cert]


def self_signed_host(name: str = "WIN-LAB01", **options: object) -> Issued:
    return issue(name, **options)  # type: ignore[arg-type]


# --- a clean chain ---------------------------------------------------------------------


def test_trusted_ca_chain_has_no_problems() -> None:
    problems = judge(served_chain(), anchors=TRUST_CHAIN)
    assert problems == ()
    assert verdict(problems) is Severity.OK


def test_windows_default_self_signed_host() -> None:
    # Given the default Windows RDP certificate: CN = computer name, no SAN, self-signed
    host = self_signed_host("WIN-LAB01")
    # When the user connects by that name, only the trust problem shows
    by_name = judge([host.cert], host="win-lab01")
    assert codes(by_name) == {"self-signed-not-pinned": Severity.WARNING}
    assert "rdptrust trust win-lab01:3389" in by_name[0].message
    # And by address, the name does not match either (a warning: pinning settles both)
    by_ip = judge([host.cert], host="127.0.0.1")
    assert codes(by_ip) == {
        "self-signed-not-pinned": Severity.WARNING,
        "name-mismatch": Severity.WARNING,
    }
    assert verdict(by_ip) is Severity.WARNING
    # And once pinned, nothing is left
    assert judge([host.cert], host="127.0.0.1", pinned=host.cert) == ()


# --- no-certificate --------------------------------------------------------------------


def test_no_certificate() -> None:
    target = Target(HOST)
    store = KnownHosts(Path("/nonexistent/known_hosts.json"))
    check = check_pin(store, target, CHAIN.leaf.cert)
    problems = judge_chain(target, [], build_path([], NONE), check, now=NOW)
    assert codes(problems) == {"no-certificate": Severity.CRITICAL}
    assert "TLS" in problems[0].message


# --- trust -----------------------------------------------------------------------------


def test_self_signed_not_pinned_raised_and_not() -> None:
    host = self_signed_host(HOST, dns=[HOST])
    assert codes(judge([host.cert])) == {"self-signed-not-pinned": Severity.WARNING}
    assert judge([host.cert], pinned=host.cert) == ()
    assert judge([host.cert], anchors=TrustAnchors((host.cert,), ("ca-file",))) == ()


def test_untrusted_root_raised_and_not() -> None:
    full = [*served_chain(), CHAIN.root.cert]
    problems = judge(full)
    assert codes(problems) == {"untrusted-root": Severity.WARNING}
    assert "CN=Test Root 0" in problems[0].message
    assert judge(full, anchors=TRUST_CHAIN) == ()
    # A pinned CA-issued leaf is trusted for its host and port whatever its root
    assert judge(full, pinned=CHAIN.leaf.cert) == ()


def test_incomplete_chain_raised_and_not() -> None:
    problems = judge([CHAIN.leaf.cert], anchors=TRUST_CHAIN)
    assert codes(problems) == {"incomplete-chain": Severity.WARNING}
    assert "CN=Test Issuing CA 0" in problems[0].message
    assert "http://127.0.0.1:9/intermediate.cer" in problems[0].message
    # Fetched over AIA and given as extra: complete
    assert judge([CHAIN.leaf.cert], anchors=TRUST_CHAIN, extra=[CHAIN.intermediate.cert]) == ()
    # Without a caIssuers URL, the message says Windows cannot build the chain
    bare = issue(HOST, issuer=CHAIN.intermediate, dns=[HOST], key=rsa_key(2048, 5))
    assert "names no URL" in judge([bare.cert], anchors=TRUST_CHAIN)[0].message
    # Pinned: the pin is the trust, nothing is missing
    assert judge([CHAIN.leaf.cert], pinned=CHAIN.leaf.cert) == ()


# --- validity --------------------------------------------------------------------------


def test_expired_and_not_yet_valid() -> None:
    expired = self_signed_host(HOST, dns=[HOST], not_before=NOW - dt.timedelta(days=200))
    problems = judge([expired.cert], pinned=expired.cert)
    assert codes(problems) == {"expired": Severity.CRITICAL}
    assert "expired on 2026-05-12 12:00 UTC (20 days ago)" in problems[0].message
    just = self_signed_host(HOST, dns=[HOST], not_before=NOW - dt.timedelta(days=180, hours=1))
    assert "(less than a day ago)" in judge([just.cert], pinned=just.cert)[0].message
    future = self_signed_host(HOST, dns=[HOST], not_before=NOW + dt.timedelta(days=2))
    problems = judge([future.cert], pinned=future.cert)
    assert codes(problems) == {"not-yet-valid": Severity.CRITICAL}
    assert "clocks" in problems[0].message
    fine = self_signed_host(HOST, dns=[HOST], not_before=NOW - dt.timedelta(days=2))
    assert judge([fine.cert], pinned=fine.cert) == ()


def test_expired_intermediate_is_named() -> None:
    later = NOW + dt.timedelta(days=1900)  # the intermediate (5 years) is over, the root not
    problems = judge(served_chain(), anchors=TRUST_CHAIN, now=later)
    expired = [p for p in problems if p.code == "expired"]
    assert len(expired) == 2  # the leaf (180 days) and the intermediate
    assert any("CA certificate 'CN=Test Issuing CA 0'" in p.message for p in expired)


def test_expiring_soon_respects_warn_days() -> None:
    host = self_signed_host(HOST, dns=[HOST], not_before=NOW - dt.timedelta(days=170), days=180)
    problems = judge([host.cert], pinned=host.cert)
    assert codes(problems) == {"expiring-soon": Severity.WARNING}
    assert "in 10 days" in problems[0].message
    assert "pin will no longer match" in problems[0].message
    assert judge([host.cert], pinned=host.cert, warn_days=9) == ()
    assert verdict(judge([host.cert], pinned=host.cert, warn_days=10)) is Severity.WARNING


# --- names -----------------------------------------------------------------------------


def test_name_mismatch_on_ca_issued_certificate_is_critical() -> None:
    problems = judge(served_chain(), host="other.example.test", anchors=TRUST_CHAIN)
    assert codes(problems) == {"name-mismatch": Severity.CRITICAL}
    assert HOST in problems[0].message
    assert "other.example.test" in problems[0].message
    assert verdict(problems) is Severity.CRITICAL
    assert judge(served_chain(), host=HOST.upper() + ".", anchors=TRUST_CHAIN) == ()


@pytest.mark.parametrize(
    ("host", "san", "cn", "expected"),
    [
        ("rdp01.example.test", ("DNS:rdp01.example.test",), None, True),
        ("RDP01.Example.Test.", ("DNS:rdp01.example.test",), None, True),
        ("rdp02.example.test", ("DNS:rdp01.example.test",), None, False),
        # the CN counts only when the SAN holds no DNS name
        ("win-lab01", (), "WIN-LAB01", True),
        ("win-lab01", ("DNS:other.example.test",), "WIN-LAB01", False),
        ("win-lab01", ("IP:10.0.0.1",), "WIN-LAB01", True),
        ("win-lab01.corp.test", (), "WIN-LAB01", False),
        # wildcards: one whole leftmost label, at least two labels after it
        ("a.rdp.example.test", ("DNS:*.rdp.example.test",), None, True),
        ("rdp.example.test", ("DNS:*.rdp.example.test",), None, False),
        ("a.b.rdp.example.test", ("DNS:*.rdp.example.test",), None, False),
        ("a.test", ("DNS:*.test",), None, False),
        ("foo.example.test", ("DNS:f*.example.test",), None, False),
        ("a.b.example.test", ("DNS:a.*.example.test",), None, False),
        ("x.example.test", (), "*.example.test", True),
        # IP targets: IP SAN entries, or a CN spelling the address when there is no SAN
        ("127.0.0.1", ("IP:127.0.0.1",), None, True),
        ("127.0.0.1", ("DNS:127.0.0.1",), None, False),
        ("127.0.0.1", ("IP:127.0.0.2",), None, False),
        ("127.0.0.1", (), "127.0.0.1", True),
        ("127.0.0.1", ("DNS:win-lab01",), "127.0.0.1", False),
        ("0:0::1", ("IP:::1",), None, True),
        ("127.0.0.1", ("DNS:*.0.0.1",), None, False),
        # internationalised names compare in their A-label form
        ("bücher.example.test", ("DNS:xn--bcher-kva.example.test",), None, True),
        ("", ("DNS:a.example.test",), None, False),
    ],
)
def test_name_rules(host: str, san: tuple[str, ...], cn: str | None, expected: bool) -> None:
    assert name_matches(host, san, cn) is expected


def test_ip_target_against_ip_san() -> None:
    host = self_signed_host("WIN-LAB01", ips=["127.0.0.1"])
    assert codes(judge([host.cert], host="127.0.0.1")) == {
        "self-signed-not-pinned": Severity.WARNING
    }
    assert "name-mismatch" in codes(judge([host.cert], host="127.0.0.2"))


# --- EKU -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("eku", "suitable"),
    [
        ([SERVER_AUTH], True),
        ([RDP_EKU], True),
        ([CLIENT_AUTH, RDP_EKU], True),
        (None, True),
        ([CLIENT_AUTH], False),
        ([x509.oid.ExtendedKeyUsageOID.CODE_SIGNING, CLIENT_AUTH], False),
    ],
)
def test_eku(eku: list[x509.ObjectIdentifier] | None, suitable: bool) -> None:
    host = self_signed_host(HOST, dns=[HOST], eku=eku)
    problems = judge([host.cert], pinned=host.cert)
    if suitable:
        assert problems == ()
    else:
        assert codes(problems) == {"eku-unsuitable": Severity.CRITICAL}
        assert "clientAuth" in problems[0].message


# --- signatures ------------------------------------------------------------------------


def test_weak_signature_on_self_signed_host() -> None:
    original = self_signed_host(HOST, dns=[HOST])
    sha1 = resign_rsa(original.cert, original.key, "sha1")  # type: ignore[arg-type]
    md5 = resign_rsa(original.cert, original.key, "md5")  # type: ignore[arg-type]
    assert codes(judge([sha1])) == {
        "self-signed-not-pinned": Severity.WARNING,
        "weak-signature": Severity.WARNING,
    }
    md5_problems = judge([md5])
    assert codes(md5_problems)["weak-signature"] is Severity.CRITICAL
    assert md5_problems[0].code == "weak-signature"  # most severe first
    assert "MD5" in md5_problems[0].message
    # Pinned, the host certificate is a trust anchor: its self-signature is not judged
    assert judge([sha1], pinned=sha1) == ()
    assert judge([md5], pinned=md5) == ()


def test_weak_signature_in_a_ca_chain() -> None:
    root_key = CHAIN.root.key
    assert isinstance(root_key, rsa.RSAPrivateKey)
    sha1_root = resign_rsa(CHAIN.root.cert, root_key, "sha1")
    sha1_intermediate = resign_rsa(CHAIN.intermediate.cert, root_key, "sha1")
    # A trusted root's own SHA-1 signature does not matter
    assert judge(served_chain(), anchors=TrustAnchors((sha1_root,), ("t",))) == ()
    # An untrusted SHA-1 root's does
    untrusted = judge([*served_chain(), sha1_root])
    assert codes(untrusted) == {
        "untrusted-root": Severity.WARNING,
        "weak-signature": Severity.WARNING,
    }
    # An intermediate signed with SHA-1 does, even under a trusted root
    problems = judge([CHAIN.leaf.cert, sha1_intermediate], anchors=TRUST_CHAIN)
    assert codes(problems) == {"weak-signature": Severity.WARNING}
    assert "CA certificate 'CN=Test Issuing CA 0'" in problems[0].message


# --- keys ------------------------------------------------------------------------------


def test_weak_key_1024_is_a_warning() -> None:
    host = self_signed_host(HOST, dns=[HOST], key=rsa_key(1024))
    problems = judge([host.cert], pinned=host.cert)
    assert codes(problems) == {"weak-key": Severity.WARNING}
    assert "1024-bit RSA" in problems[0].message
    ec_host = self_signed_host(HOST, dns=[HOST], key=ec_key())
    assert judge([ec_host.cert], pinned=ec_host.cert) == ()


@pytest.mark.peer
def test_weak_key_under_1024_is_critical(tmp_path: Path) -> None:
    # cryptography will not make a 512-bit key; openssl still does
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (Debian package openssl)")
    pem = subprocess.run(
        [openssl, "genrsa", "512"], capture_output=True, check=True, timeout=30
    ).stdout
    small = serialization.load_pem_private_key(pem, None)
    assert isinstance(small, rsa.RSAPrivateKey)
    leaf = issue(HOST, issuer=CHAIN.intermediate, key=small, dns=[HOST])
    problems = judge([leaf.cert, CHAIN.intermediate.cert], anchors=TRUST_CHAIN)
    assert codes(problems) == {"weak-key": Severity.CRITICAL}
    assert "512-bit" in problems[0].message


# --- pins ------------------------------------------------------------------------------


def test_pin_changed_recreation_and_interception() -> None:
    old = self_signed_host("WIN-LAB01", not_before=NOW - dt.timedelta(days=180))
    recreated = self_signed_host("WIN-LAB01", key=rsa_key(2048, 1), not_before=NOW)
    problems = judge([recreated.cert], host="win-lab01", pinned=old.cert)
    assert codes(problems) == {"pin-changed": Severity.CRITICAL}
    assert "six-month recreation" in problems[0].message
    assert "--replace" in problems[0].message
    # Another certificate altogether: a possible interception
    stranger = issue("WIN-LAB01", issuer=CHAIN.intermediate, key=rsa_key(2048, 6))
    problems = judge([stranger.cert, CHAIN.intermediate.cert], host="win-lab01", pinned=old.cert)
    found = codes(problems)
    assert found["pin-changed"] is Severity.CRITICAL
    assert "interception" in problems[0].message
    assert "untrusted-root" not in found  # the issuer is not in any trust source...
    assert "incomplete-chain" in found  # ...and the root was never sent
    # The pinned one itself: only its end is near
    assert codes(judge([old.cert], host="win-lab01", pinned=old.cert)) == {
        "expiring-soon": Severity.WARNING
    }


# --- odd certificates ------------------------------------------------------------------


def test_malformed_extensions_are_reported() -> None:
    key = rsa_key()
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, HOST)])
    cert = (
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
    problems = judge([cert], pinned=cert)
    assert codes(problems) == {"malformed-certificate": Severity.CRITICAL}
    assert "cannot be decoded" in problems[0].message


def test_undecodable_names_are_critical() -> None:
    der = issue("badname.example.test").der
    cert = x509.load_der_x509_certificate(der.replace(b"badname", b"bad\xffame"))
    problems = judge([cert], host="badname.example.test")
    # Only the decoding problem: trust and names cannot be judged on unreadable names
    assert codes(problems) == {"malformed-certificate": Severity.CRITICAL}
    assert "subject name could not be decoded" in problems[0].message


def test_certificate_without_any_name() -> None:
    nameless = issue("x", subject=x509.Name([]), eku=None)
    problems = judge([nameless.cert], pinned=None)
    assert codes(problems)["name-mismatch"] is Severity.WARNING
    mismatch = next(p for p in problems if p.code == "name-mismatch")
    assert "names no host at all" in mismatch.message


# --- severities ------------------------------------------------------------------------


def test_severity_order_and_verdict() -> None:
    assert Severity.OK < Severity.WARNING < Severity.CRITICAL
    assert Severity.CRITICAL > Severity.OK
    assert Severity.WARNING >= Severity.WARNING
    assert sorted([Severity.CRITICAL, Severity.OK, Severity.WARNING]) == [
        Severity.OK,
        Severity.WARNING,
        Severity.CRITICAL,
    ]
    assert [s.exit_code for s in Severity] == [0, 1, 2]
    assert verdict([]) is Severity.OK
    warning = Problem("expiring-soon", Severity.WARNING, "w")
    critical = Problem("expired", Severity.CRITICAL, "c")
    assert verdict([warning]) is Severity.WARNING
    assert verdict([warning, critical, warning]) is Severity.CRITICAL
    assert Severity("critical") is Severity.CRITICAL
