"""The JSON line ``rdptrust lab`` prints first (``rdptrust.lab/1``).

Where to connect (``rdp``, ``pki_url``, ``root_list_url``), the files it wrote
(``ca_cert``, ``certificate_chain``), the host ``certificate`` (the certificate object
of every document; ``endpoint_sha256`` lists each endpoint's fingerprint when they
differ), and how the host behaves: ``cert`` (the kind), ``offered_protocols``,
``require``, ``negotiation_data``, ``hostile``, ``latency_ms``, ``tls_range``,
``pki_modes``, ``standard_security`` (``accepted_methods``, ``encryption_level``, as in
``rdptrust.probe/2``) and ``ntlm`` (the names and version its CHALLENGE carries, the
inventory's NTLM keys); ``pid``; ``ldap`` (``mode``, and in ``dc`` mode the ``domain``
and ``dns_server`` to diagnose with; null without LDAP URLs).
"""

from __future__ import annotations

from typing import Any

from rdptrust.lab.info import LabInfo
from rdptrust.report.jsonform import to_jsonable
from rdptrust.report.objects import certificate_document, ntlm_document, ntlm_summary_document

LAB_SCHEMA = "rdptrust.lab/1"


def lab_document(info: LabInfo) -> dict[str, Any]:
    """Build the ``rdptrust.lab/1`` document of a running lab."""
    std = info.standard_security
    return {
        "schema": LAB_SCHEMA,
        "rdp": [str(target) for target in info.rdp],
        "pki_url": info.pki_url,
        "root_list_url": info.root_list_url,
        "ca_cert": to_jsonable(info.ca_cert),
        "certificate": certificate_document(info.certificate),
        "endpoint_sha256": None if info.endpoint_sha256 is None else list(info.endpoint_sha256),
        "certificate_chain": None
        if info.certificate_chain is None
        else str(info.certificate_chain),
        "cert": info.cert,
        "offered_protocols": list(info.offered_protocols),
        "require": info.require,
        "negotiation_data": info.negotiation_data,
        "hostile": info.hostile,
        "latency_ms": info.latency_ms,
        "tls_range": list(info.tls_range),
        "pki_modes": dict(info.pki_modes),
        "standard_security": None
        if std is None
        else {
            "accepted_methods": list(std.accepted_methods),
            "encryption_level": std.encryption_level,
        },
        "ntlm": ntlm_summary_document(ntlm_document(info.ntlm)),
        "pid": info.pid,
        "ldap": None
        if info.ldap is None
        else {
            "mode": info.ldap.mode,
            "domain": info.ldap.domain,
            "dns_server": info.ldap.dns_server,
        },
    }
