"""What a probe of one RDP host saw: negotiation, TLS, the chain as sent, support tables.

The network layer (:mod:`rdptrust.net.probe`) fills these; certificate facts are the
``pki`` layer's business, so the chain stays DER bytes here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol

#: One connection per protocol; the value asked for each (HYBRID needs SSL set too).
ENUMERATION_REQUESTS: dict[str, SecurityProtocol] = {
    "RDP": SecurityProtocol.RDP,
    "SSL": SecurityProtocol.SSL,
    "HYBRID": SecurityProtocol.SSL | SecurityProtocol.HYBRID,
    "HYBRID_EX": SecurityProtocol.SSL | SecurityProtocol.HYBRID | SecurityProtocol.HYBRID_EX,
    "RDSTLS": SecurityProtocol.RDSTLS,
    "RDSAAD": SecurityProtocol.RDSAAD,
}


@dataclass(frozen=True)
class Negotiation:
    """The server's answer to one Connection Request.

    ``selected`` is ``None`` when the server refused (``failure`` names the code) or sent
    no negotiation data at all (``legacy`` is then true: Standard RDP Security only).
    ``disconnected`` is true when the server answered with an MCS Disconnect Provider
    Ultimatum instead of a Connection Confirm (a refusal without a failure code).
    """

    requested: SecurityProtocol
    selected: SecurityProtocol | None
    failure: str | None
    legacy: bool
    disconnected: bool = False


@dataclass(frozen=True)
class ProtocolSupport:
    """Whether the host accepts one security protocol, from a connection asking for it.

    ``accepted`` is ``None`` when it cannot be told: the host sent no negotiation data
    (an old host), or the attempt failed (``error`` says how).
    """

    name: str
    requested: SecurityProtocol
    accepted: bool | None
    selected: SecurityProtocol | None
    failure: str | None
    error: ProbeFailure | None


@dataclass(frozen=True)
class TlsVersionSupport:
    """Whether the host completes a handshake with exactly this TLS version.

    ``accepted`` is ``None`` when the attempt failed before TLS (connect, negotiation).
    """

    version: str
    accepted: bool | None
    error: ProbeFailure | None


@dataclass(frozen=True)
class Timings:
    """Milliseconds spent in each phase of the main connection; ``None`` = not reached."""

    connect_ms: float | None = None
    x224_ms: float | None = None
    tls_ms: float | None = None
    total_ms: float = 0.0


@dataclass(frozen=True)
class ProbeResult:
    """Everything one probe of one host saw.

    ``tls`` is ``None`` when no TLS session was made (the host refused TLS, or the
    probe failed); ``chain`` is then empty. ``error`` is ``None`` when the host was
    probed, even if it refused every protocol we asked for. ``standard_security`` is
    ``None`` when it was not asked for or the host does not accept Standard RDP
    Security; ``ntlm`` is ``None`` when it was not asked for or the host did not select
    CredSSP (a failed attempt is an :class:`NtlmInfo` with ``error`` set).
    """

    target: Target
    address: str | None
    negotiation: Negotiation | None
    tls: TlsSessionInfo | None
    protocols: tuple[ProtocolSupport, ...]
    tls_versions: tuple[TlsVersionSupport, ...]
    timings: Timings
    error: ProbeFailure | None
    #: The Standard RDP Security enumeration; ``None`` when it was not run, or the host
    #: refused Standard RDP Security at the X.224 step (RDP not accepted).
    standard_security: StandardSecurityResult | None = None
    #: What the host's NTLM CHALLENGE told about it; ``None`` when not asked (the host
    #: did not select CredSSP, or ``ntlm=False``). A failed attempt is an ``NtlmInfo``
    #: whose ``error`` says why.
    ntlm: NtlmInfo | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def chain(self) -> tuple[bytes, ...]:
        return self.tls.chain if self.tls else ()

    @property
    def leaf(self) -> bytes | None:
        return self.chain[0] if self.chain else None

    @property
    def stapled_ocsp(self) -> bytes | None:
        """The OCSP response the host stapled in the main handshake, or ``None``."""
        return self.tls.stapled_ocsp if self.tls else None


@dataclass(frozen=True)
class TlsSessionInfo:
    """What the TLS handshake settled on and the chain the server sent (leaf first, DER).

    ``completed`` is false when the handshake failed after the host's certificate was
    read from its (plaintext, TLS 1.0-1.2) flight; ``failure`` then says why, and
    ``version`` and ``cipher`` are what the ServerHello chose. ``secure_renegotiation``
    says whether the ServerHello carried RFC 5746's renegotiation_info (``None`` with
    TLS 1.3, which has no renegotiation, or when no ServerHello was read).
    ``stapled_ocsp`` is the OCSP response DER the host stapled (RFC 6066 status_request,
    asked on every handshake); ``None`` when it stapled none or one over the size bound.
    """

    version: str
    cipher: str
    chain: tuple[bytes, ...]
    completed: bool = True
    failure: str | None = None
    secure_renegotiation: bool | None = None
    stapled_ocsp: bytes | None = None


@dataclass(frozen=True)
class OsVersion:
    """The Windows version a host announces (NTLM VERSION, MS-NLMP 2.2.2.10)."""

    major: int
    minor: int
    build: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.build}"


@dataclass(frozen=True)
class NtlmInfo:
    """Host information from the NTLM CHALLENGE, or why it could not be read.

    Each name is ``None`` when the CHALLENGE did not carry it. ``os_version`` is ``None``
    when the host sent no VERSION (NTLMSSP_NEGOTIATE_VERSION not set) and ``server_time``
    when TargetInfo had no Timestamp. On failure every field is ``None`` and ``error``
    says why (``kind`` ``refused`` when the host did not select CredSSP).
    """

    target_name: str | None = None
    netbios_computer_name: str | None = None
    netbios_domain_name: str | None = None
    dns_computer_name: str | None = None
    dns_domain_name: str | None = None
    dns_tree_name: str | None = None
    os_version: OsVersion | None = None
    server_time: dt.datetime | None = None
    elapsed_ms: float = 0.0
    error: ProbeFailure | None = None
    #: Milliseconds from sending the NTLM NEGOTIATE (inside TLS) to the whole CHALLENGE:
    #: the host's own CredSSP answer time; ``None`` when no CHALLENGE was read.
    challenge_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class EncryptionMethodSupport:
    """The answer to one connection offering exactly one encryption method.

    ``accepted`` is ``None`` when it cannot be told: the host refused Standard RDP
    Security at the X.224 step (``refused`` names the failure code) or the attempt
    failed (``error``). ``selected`` is the method the host chose (``NONE`` when it
    chose none) and ``encryption_level`` its level; both ``None`` without an answer.
    ``accepted`` false with ``selected`` ``None`` means the host closed the connection
    instead of answering (it has no method in common with the one offered).
    """

    method: str
    accepted: bool | None
    selected: str | None
    encryption_level: str | None
    refused: str | None
    error: ProbeFailure | None


@dataclass(frozen=True)
class StandardSecurityResult:
    """What the host answers to Standard RDP Security requests.

    ``encryption_level``, ``rdp_version`` (the SC_CORE value), ``certificate_type``
    (``proprietary`` or ``x509``), ``certificate_temporary`` and ``certificate_key_bits``
    (the proprietary RSA key size; ``None`` for X.509) come from the first answer and
    are ``None`` when no attempt got a Connect-Response. ``x509_chain`` holds the DER
    certificates of an X.509 server certificate, as sent.
    """

    methods: tuple[EncryptionMethodSupport, ...]
    encryption_level: str | None
    rdp_version: int | None
    certificate_type: str | None
    certificate_temporary: bool | None
    certificate_key_bits: int | None
    x509_chain: tuple[bytes, ...] = ()
    elapsed_ms: float = 0.0

    @property
    def accepted_methods(self) -> tuple[str, ...]:
        return tuple(m.method for m in self.methods if m.accepted)

    @property
    def refused(self) -> bool:
        """True when every attempt was refused at the X.224 step (RDP not accepted)."""
        return bool(self.methods) and all(m.refused is not None for m in self.methods)
