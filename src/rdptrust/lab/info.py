"""What a running lab tells its user: :class:`LabInfo` (``rdptrust lab`` prints its JSON)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rdptrust.model.certificate import CertificateFacts
from rdptrust.model.probe import NtlmInfo
from rdptrust.model.target import Target


@dataclass(frozen=True)
class LabStandardSecurity:
    """The Standard RDP Security the lab answers: methods it accepts and its level."""

    accepted_methods: tuple[str, ...]
    encryption_level: str


@dataclass(frozen=True)
class LabLdap:
    """The lab's LDAP CRL and AIA: their mode and, in ``dc`` mode, the domain and the DNS
    server (``ADDR:PORT``) that lists its DCs (both None otherwise)."""

    mode: str
    domain: str | None
    dns_server: str | None


@dataclass(frozen=True)
class LabInfo:
    """A running lab: where its endpoints and responders are, and how it behaves.

    ``ca_cert`` is None without a lab CA. ``endpoint_sha256`` is None unless each
    endpoint serves a certificate of its own. ``require`` and ``hostile`` are None for
    no requirement and a well-behaved endpoint; ``standard_security`` is None when MCS is
    not answered. ``ntlm`` is what the NTLM CHALLENGE names (its clock is sent at the
    time of each CHALLENGE, so ``server_time`` is None here).
    """

    rdp: tuple[Target, ...]
    pki_url: str
    root_list_url: str
    ca_cert: Path | None
    certificate: CertificateFacts
    endpoint_sha256: tuple[str, ...] | None
    certificate_chain: Path | None
    cert: str
    offered_protocols: tuple[str, ...]
    require: str | None
    negotiation_data: bool
    hostile: str | None
    latency_ms: int
    tls_range: tuple[str, str]
    pki_modes: Mapping[str, str]
    standard_security: LabStandardSecurity | None
    ntlm: NtlmInfo
    pid: int
    ldap: LabLdap | None = None
    """The LDAP side; None when the certificate's URLs are HTTP only."""
