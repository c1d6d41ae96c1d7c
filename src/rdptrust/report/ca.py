"""The ``rdptrust ca --json`` documents: ``rdptrust.ca-init/1``, ``ca-issue/2``,
``ca-revoke/1``, ``ca-crl/2`` and ``ca-list/1``.

An entry of the CA's register (``ca-list``, ``ca-revoke``) is ``serial`` (lowercase
hex, whole octets, as in the certificate object), ``host``, ``names``, ``not_before``,
``not_after``, ``sha1``, ``sha256``, and ``revoked_at`` + ``reason`` (null while
valid). Times are RFC 3339 UTC.

``ca-issue/2`` (from 1) holds the issued certificate as the certificate object of every
document, with ``host`` beside it. ``ca-crl/2`` (from 1) calls the number of
certificates the CRL lists ``revoked_count`` (``revoked`` is a list elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography import x509

from rdptrust.pki.ca import IssuedCertificate, IssuedRecord
from rdptrust.pki.facts import certificate_facts
from rdptrust.report.jsonform import optional_timestamp, timestamp
from rdptrust.report.objects import certificate_document, files_document

CA_INIT_SCHEMA = "rdptrust.ca-init/1"
CA_ISSUE_SCHEMA = "rdptrust.ca-issue/2"
CA_REVOKE_SCHEMA = "rdptrust.ca-revoke/1"
CA_CRL_SCHEMA = "rdptrust.ca-crl/2"
CA_LIST_SCHEMA = "rdptrust.ca-list/1"


def _serial(serial: int) -> str:
    # whole octets, as the certificate object's ``serial`` (rdptrust.pki.facts) writes it
    text = format(serial, "x")
    return text if len(text) % 2 == 0 else "0" + text


def issued_document(record: IssuedRecord) -> dict[str, Any]:
    """One certificate the CA issued."""
    return {
        "serial": _serial(record.serial),
        "host": record.host,
        "names": list(record.names),
        "not_before": timestamp(record.not_before),
        "not_after": timestamp(record.not_after),
        "sha1": record.sha1,
        "sha256": record.sha256,
        "revoked_at": optional_timestamp(record.revoked_at),
        "reason": record.reason,
    }


def ca_init_document(directory: Path, sha1: str) -> dict[str, Any]:
    """``ca-init/1``: the CA folder and the CA certificate's SHA-1 thumbprint."""
    return {"schema": CA_INIT_SCHEMA, "directory": str(directory), "sha1": sha1}


def ca_issue_document(issued: IssuedCertificate, files: Mapping[str, Path]) -> dict[str, Any]:
    """``ca-issue/2``: the ``host``, the issued ``certificate`` (the certificate object
    of every document) and the ``files`` of its bundle."""
    return {
        "schema": CA_ISSUE_SCHEMA,
        "host": issued.record.host,
        "certificate": certificate_document(certificate_facts(issued.certificate)),
        "files": files_document(files),
    }


def ca_revoke_document(revoked: Iterable[IssuedRecord]) -> dict[str, Any]:
    """``ca-revoke/1``: the certificates revoked now."""
    return {"schema": CA_REVOKE_SCHEMA, "revoked": [issued_document(r) for r in revoked]}


def ca_crl_document(file: Path, crl: x509.CertificateRevocationList) -> dict[str, Any]:
    """``ca-crl/2``: the CRL ``file`` written, how many certificates it lists
    (``revoked_count``) and its ``next_update`` (null when the CRL has none)."""
    return {
        "schema": CA_CRL_SCHEMA,
        "file": str(file),
        "revoked_count": len(list(crl)),
        "next_update": optional_timestamp(crl.next_update_utc),
    }


def ca_list_document(records: Iterable[IssuedRecord]) -> dict[str, Any]:
    """``ca-list/1``: every certificate the CA issued."""
    return {"schema": CA_LIST_SCHEMA, "issued": [issued_document(r) for r in records]}
