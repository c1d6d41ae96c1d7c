"""The lab CA: revocation state, the CRL of each issuer, the root written as PEM."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509

from rdptrust.errors import UsageError
from rdptrust.lab.certs.ca import LabCa


@pytest.fixture(scope="module")
def ca() -> LabCa:
    return LabCa.generate()


def test_revoke_shows_in_the_issuers_crl_only() -> None:
    ca = LabCa.generate()
    leaf = ca.issue("WIN-LAB01").leaf
    other = ca.issue("WIN-LAB02").leaf
    assert {leaf.serial_number, other.serial_number, ca.intermediate.serial_number} == set(
        ca.issued_serials
    )
    assert not ca.is_revoked(leaf.serial_number)
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    ca.revoke(leaf.serial_number, reason=x509.ReasonFlags.superseded, revoked_at=when)
    assert ca.is_revoked(leaf.serial_number)
    assert not ca.is_revoked(other.serial_number)

    crl = ca.crl("intermediate")
    assert crl.is_signature_valid(ca.intermediate_key.public_key())
    assert crl.issuer == ca.intermediate.subject
    entry = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
    assert entry is not None
    assert entry.revocation_date_utc == when
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.superseded
    )
    assert crl.get_revoked_certificate_by_serial_number(other.serial_number) is None
    assert len(ca.crl("root")) == 0

    ca.revoke(ca.intermediate.serial_number)
    root_crl = ca.crl("root")
    assert root_crl.is_signature_valid(ca.root_key.public_key())
    assert [r.serial_number for r in root_crl] == [ca.intermediate.serial_number]
    assert len(ca.crl("intermediate")) == 1


def test_revoking_a_serial_the_ca_never_issued_is_an_error() -> None:
    ca = LabCa.generate()
    with pytest.raises(UsageError, match="not issued"):
        ca.revoke(12345)
    with pytest.raises(UsageError, match="unknown issuer"):
        ca.crl("leaf")  # type: ignore[arg-type]


def test_write_root_pem(tmp_path: Path, ca: LabCa) -> None:
    path = ca.write_root_pem(tmp_path / "sub" / "root.pem")
    assert x509.load_pem_x509_certificate(path.read_bytes()) == ca.root
    constraints = ca.root.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
