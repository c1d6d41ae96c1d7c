"""The lab's RDP endpoint: X.224 negotiation by policy, TLS, an NTLM CHALLENGE, hostile modes.

One :class:`RdpEndpoint` listens on one address and port. For each connection it reads
the X.224 Connection Request and answers as a Windows host with the configured
:class:`RdpPolicy` would:

- the protocol is chosen like Windows chooses it, HYBRID_EX > HYBRID > SSL, among those
  the client asked for and the lab offers (``required`` narrows what is offered);
  a client asking for nothing (``requestedProtocols`` 0) gets Standard RDP Security
  when the lab offers it;
- when nothing fits, RDP_NEG_FAILURE says why: SSL_REQUIRED_BY_SERVER (the client
  asked for Standard RDP Security only, the lab needs TLS), SSL_NOT_ALLOWED_BY_SERVER
  (the client asked for TLS or CredSSP, the lab offers Standard RDP Security only),
  HYBRID_REQUIRED_BY_SERVER (the lab needs CredSSP and the client did not ask for it);
- ``negotiation=False`` answers every request with a Connection Confirm without
  negotiation data, as hosts older than RDP 5.2 did.

After an RDP_NEG_RSP selecting SSL, HYBRID or HYBRID_EX the endpoint runs TLS on the
same stream with the current :class:`ssl.SSLContext` (swappable at run time). With
HYBRID or HYBRID_EX it then reads a CredSSP TSRequest holding an NTLM NEGOTIATE and
answers with an NTLM CHALLENGE naming the lab's computer and domain
(:class:`NtlmIdentity`); an AUTHENTICATE that follows is answered with errorCode
STATUS_LOGON_FAILURE and the connection is closed: the lab never accepts a logon.
Then comes MCS Connect-Initial (in the clear for Standard RDP Security, inside TLS for
SSL): with a :class:`~rdptrust.lab.standard_security.StandardSecurityPolicy` the lab
answers it with a Connect-Response and closes at the client's next PDU; without one it
closes instead (right after the Confirm for Standard RDP Security).

TLS modes (:class:`TlsMode`, :mod:`~rdptrust.lab.rdp.tls_modes`): ``standard``
(Python's ``ssl``), ``stapled`` (staples an OCSP answer) and ``legacy`` (a TLS 1.0
host that predates RFC 5746, :mod:`~rdptrust.lab.rdp.legacy_tls`).

Hostile modes (:class:`HostileMode`) replace the answer, for robustness tests:

================  ===========================================================================
mode              on the wire, after the Connection Request arrived
================  ===========================================================================
garbage           bytes that are no TPKT packet, then close
length-too-large  a Confirm whose TPKT length counts 8 bytes more than the PDU, and 8 zero
                  bytes to fill it: the X.224 length indicator no longer matches
length-too-small  a Confirm whose TPKT length is 8 bytes short (the rest follows anyway)
truncated         the first 11 bytes of a valid Confirm, then close
reset             nothing; the connection is aborted (TCP RST, ``ECONNRESET``)
slow-drip         the valid Confirm one byte per second, then the normal exchange
tls-alert         the valid Confirm; then, for the ClientHello, a fatal TLS
                  handshake_failure alert record instead of a ServerHello, then close
endless           :data:`ENDLESS_CHUNK` bytes at most :data:`ENDLESS_RATE` bytes per second,
                  forever, until the client goes
silence           nothing at all (no Request is even waited for); the connection is held
================  ===========================================================================

Every wait for the client is bounded by ``request_timeout_s``; every read is bounded in
size; :meth:`RdpEndpoint.stop` closes every connection and leaves no task behind.

Modules: :mod:`~rdptrust.lab.rdp.policy` (what is offered and selected),
:mod:`~rdptrust.lab.rdp.hostile` (the hostile modes), :mod:`~rdptrust.lab.rdp.credssp`
(the NTLM CHALLENGE and the logon refusal) and :mod:`~rdptrust.lab.rdp.endpoint` (the
server).
"""

from __future__ import annotations

from rdptrust.lab.rdp.credssp import NtlmIdentity
from rdptrust.lab.rdp.endpoint import (
    CONNECTIONS_KEPT,
    TLS_VERSIONS,
    ConnectionCounts,
    ConnectionRecord,
    RdpEndpoint,
    server_context,
)
from rdptrust.lab.rdp.hostile import ENDLESS_CHUNK, ENDLESS_RATE, GARBAGE, TLS_ALERT, HostileMode
from rdptrust.lab.rdp.legacy_tls import LegacyTlsServer
from rdptrust.lab.rdp.policy import (
    DEFAULT_PROTOCOLS,
    OFFERABLE,
    RESPONSE_FLAGS,
    SELECTION_ORDER,
    RdpPolicy,
    parse_protocol,
    parse_protocols,
    protocol_names,
)
from rdptrust.lab.rdp.tls_modes import StaplingTlsServer, TlsMode, TlsServer, TlsSession

__all__ = [
    "CONNECTIONS_KEPT",
    "DEFAULT_PROTOCOLS",
    "ENDLESS_CHUNK",
    "ENDLESS_RATE",
    "GARBAGE",
    "OFFERABLE",
    "RESPONSE_FLAGS",
    "SELECTION_ORDER",
    "TLS_ALERT",
    "TLS_VERSIONS",
    "ConnectionCounts",
    "ConnectionRecord",
    "HostileMode",
    "LegacyTlsServer",
    "NtlmIdentity",
    "RdpEndpoint",
    "RdpPolicy",
    "StaplingTlsServer",
    "TlsMode",
    "TlsServer",
    "TlsSession",
    "parse_protocol",
    "parse_protocols",
    "protocol_names",
    "server_context",
]
