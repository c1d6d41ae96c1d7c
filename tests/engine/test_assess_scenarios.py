"""The scenarios of "Securing remote connection" on the lab: verdict, predicted stall
(within 1 s of the model) and the named cause, each from real retrievals on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import ipaddress
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from fixtures.lab import LabFactory
from rdptrust.engine import AssessOptions, assess
from rdptrust.fix.advice import fixes_for
from rdptrust.lab.runner import Lab
from rdptrust.model.assessment import Assessment
from rdptrust.model.catalog import lookup
from rdptrust.model.retrieval import Purpose
from rdptrust.model.windows import WindowsSettings
from rdptrust.pki.pinning import KnownHosts, pin_from_certificate

URL_TIMEOUT = 1.0


def options(lab: Lab, tmp_path: Path, *, trust_ca: bool = False, **kwargs: object) -> AssessOptions:
    ca_files = (lab.ca_cert_path,) if trust_ca and lab.ca_cert_path else ()
    return AssessOptions(
        fetch_timeout_s=URL_TIMEOUT,
        probe_timeout_s=5.0,
        root_list_url=lab.root_list_url,
        known_hosts=tmp_path / "known_hosts.json",
        system_trust=False,
        ca_files=ca_files,
        **kwargs,  # type: ignore[arg-type]
    )


def codes(diagnosis: Assessment) -> set[str]:
    """The problem codes of *diagnosis*, each checked against the problem catalog."""
    for problem in (*diagnosis.problems, *diagnosis.findings):
        assert problem.severity in lookup(problem.code).severities, problem
    return {p.code for p in diagnosis.problems}


def counted(diagnosis: Assessment, purpose: Purpose) -> list[str]:
    return [r.outcome.value for r in diagnosis.retrievals if r.counted and r.purpose == purpose]


async def test_self_signed_with_blackholed_root_list(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory(cert="self-signed", root_list="blackhole")
    result = await assess(lab.target, options(lab, tmp_path))
    # WINDOWS.md §2: the trusted list, the disallowed list and (Windows 10) the pin rules
    # are each synced, and each black-holed fetch waits 15 s
    assert result.predicted_stall_s == pytest.approx(45.0, abs=1.0)
    assert result.prediction.later_connections.high_s == pytest.approx(45.0, abs=1.0)
    assert result.causes[0].purpose == Purpose.ROOT_LIST
    assert result.causes[0].modelled is True
    assert "root list" in result.causes[0].text
    assert counted(result, Purpose.ROOT_LIST) == ["timeout"]
    assert result.verdict == "critical"
    assert {"self-signed-not-pinned", "predicted-stall"} <= codes(result)
    assert {f.id for f in fixes_for(result)} >= {
        "method1-trust-host-certificate",
        "method2-disable-root-update",
        "ca-issued-host-certificate",
    }


async def test_root_update_off_removes_the_root_list_wait(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory(cert="self-signed", root_list="blackhole")
    off = options(lab, tmp_path, windows=WindowsSettings(root_update=False))
    result = await assess(lab.target, off)
    assert counted(result, Purpose.ROOT_LIST) == []
    # Method 2 leaves the disallowed list and pin rules (WINDOWS.md §2): 15 + 15 s
    assert result.predicted_stall_s == pytest.approx(30.0, abs=1.0)
    assert {c.purpose for c in result.causes} == {Purpose.DISALLOWED_LIST, Purpose.PIN_RULES}
    both_off = WindowsSettings(root_update=False, disallowed_update=False)
    result = await assess(lab.target, options(lab, tmp_path, windows=both_off))
    assert result.predicted_stall_s < 1.0
    assert "predicted-stall" not in codes(result)
    # the certificate is still untrusted: the prompt stays
    assert "self-signed-not-pinned" in codes(result)


async def test_pinned_host_is_trusted_without_stall(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # NLA required, as on a default Windows host: no security finding either
    lab = await lab_factory(cert="self-signed", root_list="blackhole", require="HYBRID")
    store = KnownHosts.load(tmp_path / "known_hosts.json")
    store.add(pin_from_certificate(lab.target, lab.credentials.leaf))
    store.save()
    # with the clients' trust lists fresh (not due), nothing is fetched
    fresh = options(lab, tmp_path, windows=WindowsSettings(ctl_due=False))
    result = await assess(lab.target, fresh)
    assert result.trusted is True
    assert result.predicted_stall_s == 0.0
    assert result.retrievals == ()
    assert result.verdict == "ok"
    assert any("Method 1 deployed" in a for a in result.prediction.assumptions)


async def test_ca_issued_and_trusted_is_ok(lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = await lab_factory(cert="ca", require="HYBRID")
    result = await assess(lab.target, options(lab, tmp_path, trust_ca=True))
    assert result.verdict == "ok", result.problems
    assert result.predicted_stall_s < 1.0
    assert result.trusted is True
    assert counted(result, Purpose.OCSP) == ["ok"]
    assert counted(result, Purpose.ROOT_LIST) == []
    revocations = {r.revocation.value for r in result.retrievals if r.revocation}
    assert revocations == {"good"}


async def test_blackholed_crl_is_a_revocation_wait(lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = await lab_factory(cert="ca", crl="blackhole")
    result = await assess(lab.target, options(lab, tmp_path, trust_ca=True))
    assert result.predicted_stall_s == pytest.approx(15.0, abs=1.0)
    assert result.causes[0].purpose == Purpose.CRL
    assert result.verdict == "critical"
    assert "reach-revocation-urls" in {f.id for f in fixes_for(result)}


async def test_crl_and_ocsp_blackholed_give_both_regimes(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory(cert="ca", crl="blackhole", ocsp="blackhole")
    result = await assess(lab.target, options(lab, tmp_path, trust_ca=True))
    # three dead URLs (host OCSP, host CRL, intermediate CRL), WINDOWS.md §3:
    # per URL 3 x 15 s; accumulative 10 + 5 + 2.5 s
    first = result.prediction.first_connection
    assert first.high_s == pytest.approx(45.0, abs=1.0)
    assert first.low_s == pytest.approx(17.5, abs=1.0)
    assert result.revocation_capped is True
    assert any("accumulative" in c.text for c in result.causes)


async def test_revoked_is_critical(lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = await lab_factory(cert="ca")
    assert lab.ca is not None
    lab.ca.revoke(lab.credentials.leaf.serial_number)
    result = await assess(lab.target, options(lab, tmp_path, trust_ca=True))
    assert result.verdict == "critical"
    assert "revoked" in codes(result)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("expired", "expired"),
        ("wrong-name", "name-mismatch"),
        ("sha1", "weak-signature"),
        ("weak-key", "weak-key"),
    ],
)
async def test_each_bad_certificate_is_its_own_problem(
    lab_factory: LabFactory, tmp_path: Path, kind: str, code: str
) -> None:
    lab = await lab_factory(cert=kind, issuer="ca", tls_min="TLSv1.2")
    result = await assess(lab.target, options(lab, tmp_path, trust_ca=True))
    assert code in codes(result), result.problems
    others = codes(result) - {code, "expiring-soon", "predicted-stall", "revocation-unavailable"}
    assert others == set(), result.problems


async def test_five_blackholed_urls_run_in_parallel(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given a host certificate from a trusted CA naming five revocation URLs that all
    # black-hole (2 OCSP, 3 CRL)
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # never answered; closed when the test ends

    hole = await asyncio.start_server(hold, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{hole.sockets[0].getsockname()[1]}"
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Scenario CA")])
    now = dt.datetime.now(dt.UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(f"{base}/{n}.crl")], None, None, None
                    )
                    for n in ("a", "b", "c")
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(f"{base}/ocsp{n}"),
                    )
                    for n in (1, 2)
                ]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    lab = await lab_factory(cert_file=tmp_path / "leaf.pem", key_file=tmp_path / "key.pem")
    opts = dataclasses.replace(options(lab, tmp_path), ca_files=(tmp_path / "ca.pem",))
    try:
        # When diagnosing
        start = time.monotonic()
        result = await assess(lab.target, opts)
        wall = time.monotonic() - start
    finally:
        for writer in held:
            writer.close()
        hole.close()
        await hole.wait_closed()
    # Then all five were tried at once: the wall time stays under url-timeout + 3 s
    timed_out = [r for r in result.retrievals if r.outcome.value == "timeout"]
    assert len(timed_out) == 5, result.retrievals
    assert wall < URL_TIMEOUT + 3.0
    # and the model gives 5 x 15 s per URL, 10 + 5 + 2.5 + 1.25 + 0.625 s accumulative
    assert result.predicted_stall_s == pytest.approx(75.0, abs=1.0)
    assert result.prediction.first_connection.low_s == pytest.approx(19.375, abs=1.0)
    assert result.revocation_capped is True


async def test_unreachable_host_is_unknown(tmp_path: Path) -> None:
    import socket

    from rdptrust.model.target import Target

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        result = await assess(
            Target("127.0.0.1", port),
            AssessOptions(fetch_timeout_s=URL_TIMEOUT, known_hosts=tmp_path / "k.json"),
        )
    assert result.verdict == "unknown"
    assert result.probe.error is not None
