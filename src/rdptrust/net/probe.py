"""Probe one RDP host: negotiation, TLS, the chain as sent, protocol and TLS-version support.

Every attempt returns a typed outcome; a failed attempt never raises out of
:func:`probe_host`. The result keeps the chain as DER bytes; certificate facts are
the ``pki`` layer's business.
"""

from __future__ import annotations

import asyncio
import time

from rdptrust.errors import ProtocolError, TransportError
from rdptrust.model.outcome import ProbeFailure as ProbeFailure
from rdptrust.model.probe import (
    ENUMERATION_REQUESTS,
    Negotiation,
    NtlmInfo,
    ProbeResult,
    ProtocolSupport,
    StandardSecurityResult,
    Timings,
    TlsSessionInfo,
    TlsVersionSupport,
)
from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.net.connection import TLS_VERSIONS, RdpConnection
from rdptrust.protocol.mcs import DisconnectProviderUltimatum
from rdptrust.protocol.x224 import (
    CLIENT_REQUESTED_PROTOCOLS,
    PROBE_COOKIE,
    ConnectionConfirm,
    ConnectionRequest,
    NegotiationFailure,
    NegotiationRequest,
    NegotiationResponse,
)


def negotiation_from_confirm(
    requested: SecurityProtocol, confirm: ConnectionConfirm | DisconnectProviderUltimatum
) -> Negotiation:
    """The :class:`Negotiation` a Connection Confirm (or a Disconnect Ultimatum) says."""
    if isinstance(confirm, DisconnectProviderUltimatum):
        return Negotiation(requested, None, None, False, disconnected=True)
    neg = confirm.negotiation
    if isinstance(neg, NegotiationResponse):
        return Negotiation(requested, neg.selected_protocol, None, False)
    if isinstance(neg, NegotiationFailure):
        return Negotiation(requested, None, neg.name, False)
    return Negotiation(requested, None, None, True)


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000.0, 3)


def _request(protocols: SecurityProtocol) -> ConnectionRequest:
    return ConnectionRequest(cookie=PROBE_COOKIE, negotiation=NegotiationRequest(protocols))


def _tls_server_name(target: Target) -> str | None:
    return None if target.is_ip else target.host


async def _main_connection(
    target: Target, timeout: float
) -> tuple[str | None, Negotiation | None, TlsSessionInfo | None, Timings, ProbeFailure | None]:
    start = time.monotonic()
    deadline = start + timeout
    connect_ms = x224_ms = tls_ms = None
    negotiation: Negotiation | None = None
    tls: TlsSessionInfo | None = None
    address: str | None = None
    failure: ProbeFailure | None = None
    conn: RdpConnection | None = None
    try:
        conn = await RdpConnection.open(target, deadline)
        address = conn.peer_address
        t1 = time.monotonic()
        connect_ms = _ms(start, t1)
        confirm = await conn.negotiate(_request(CLIENT_REQUESTED_PROTOCOLS), deadline)
        t2 = time.monotonic()
        x224_ms = _ms(t1, t2)
        negotiation = negotiation_from_confirm(CLIENT_REQUESTED_PROTOCOLS, confirm)
        # Every protocol mstsc asks for starts with TLS; RDP (0) does not.
        if negotiation.selected is not None and negotiation.selected & CLIENT_REQUESTED_PROTOCOLS:
            tls = await conn.start_tls(
                deadline, server_name=_tls_server_name(target), keep_partial=True
            )
            tls_ms = _ms(t2, time.monotonic())
    except (TransportError, ProtocolError) as exc:
        failure = ProbeFailure.from_exception(exc)
    finally:
        if conn is not None:
            await conn.close()
    timings = Timings(connect_ms, x224_ms, tls_ms, _ms(start, time.monotonic()))
    return address, negotiation, tls, timings, failure


async def _protocol_attempt(target: Target, name: str, timeout: float) -> ProtocolSupport:
    requested = ENUMERATION_REQUESTS[name]
    wanted = SecurityProtocol[name]
    deadline = time.monotonic() + timeout
    conn: RdpConnection | None = None
    try:
        conn = await RdpConnection.open(target, deadline)
        confirm = await conn.negotiate(_request(requested), deadline)
    except (TransportError, ProtocolError) as exc:
        return ProtocolSupport(name, requested, None, None, None, ProbeFailure.from_exception(exc))
    finally:
        if conn is not None:
            await conn.close()
    neg = negotiation_from_confirm(requested, confirm)
    if neg.legacy:
        # An old host that ignores negotiation speaks Standard RDP Security only.
        accepted = True if wanted == SecurityProtocol.RDP else None
        return ProtocolSupport(name, requested, accepted, None, None, None)
    # Accepted only when the server picked exactly what we asked for.
    accepted = neg.selected is not None and neg.selected == wanted
    return ProtocolSupport(name, requested, accepted, neg.selected, neg.failure, None)


async def _tls_version_attempt(target: Target, version: str, timeout: float) -> TlsVersionSupport:
    deadline = time.monotonic() + timeout
    # Ask for SSL first; a host that insists on CredSSP gets what mstsc asks for (CredSSP
    # also starts with TLS).
    for request in (SecurityProtocol.SSL, CLIENT_REQUESTED_PROTOCOLS):
        conn: RdpConnection | None = None
        try:
            conn = await RdpConnection.open(target, deadline)
            neg = negotiation_from_confirm(
                request, await conn.negotiate(_request(request), deadline)
            )
            if neg.selected is None or neg.selected == SecurityProtocol.RDP:
                continue
            try:
                session = await conn.start_tls(
                    deadline,
                    min_version=version,
                    max_version=version,
                    server_name=_tls_server_name(target),
                    keep_partial=True,
                )
            except TransportError as exc:
                return TlsVersionSupport(version, False, ProbeFailure.from_exception(exc))
            # A host whose ServerHello chose this version speaks it, even when the
            # handshake then failed (the failure is kept).
            failure = None if session.completed else ProbeFailure("tls", session.failure or "")
            return TlsVersionSupport(version, session.version == version, failure)
        except (TransportError, ProtocolError) as exc:
            return TlsVersionSupport(version, None, ProbeFailure.from_exception(exc))
        finally:
            if conn is not None:
                await conn.close()
    return TlsVersionSupport(version, None, None)


async def probe_host(
    target: Target,
    *,
    timeout: float = 10.0,
    enumerate_protocols: bool = True,
    enumerate_tls_versions: bool = True,
    standard_security: bool = True,
    ntlm: bool = True,
) -> ProbeResult:
    """Probe *target* the way the Windows client starts a connection.

    The main connection asks for SSL|HYBRID|HYBRID_EX like mstsc and runs TLS when the
    host agrees; it has *timeout* seconds for connect, negotiation and handshake
    together. When it reached the host, the enumeration connections (one per security
    protocol and one per TLS version) then run concurrently, each with the same budget.
    With *standard_security*, one connection per Standard RDP Security encryption method
    runs alongside them; with *ntlm*, when the host selected CredSSP, one more connection
    asks for the anonymous NTLM CHALLENGE (no credentials are sent).
    """
    address, negotiation, tls, timings, failure = await _main_connection(target, timeout)
    protocols: tuple[ProtocolSupport, ...] = ()
    versions: tuple[TlsVersionSupport, ...] = ()
    standard: StandardSecurityResult | None = None
    ntlm_info: NtlmInfo | None = None
    if failure is None or negotiation is not None:
        jobs_p = (
            [_protocol_attempt(target, name, timeout) for name in ENUMERATION_REQUESTS]
            if enumerate_protocols
            else []
        )
        jobs_v = (
            [_tls_version_attempt(target, v, timeout) for v in TLS_VERSIONS]
            if enumerate_tls_versions and negotiation is not None and not negotiation.legacy
            else []
        )
        jobs_s = []
        if standard_security:
            # imported when asked: a scan without --enumerate never loads them
            from rdptrust.net.standard_security import probe_standard_security

            jobs_s = [probe_standard_security(target, timeout=timeout)]
        wants_ntlm = (
            ntlm
            and negotiation is not None
            and negotiation.selected is not None
            and bool(negotiation.selected & (SecurityProtocol.HYBRID | SecurityProtocol.HYBRID_EX))
        )
        jobs_n = []
        if wants_ntlm:
            from rdptrust.net.ntlm_info import get_ntlm_info

            jobs_n = [get_ntlm_info(target, timeout=timeout)]
        outcomes = await asyncio.gather(*jobs_p, *jobs_v, *jobs_s, *jobs_n, return_exceptions=True)
        # Every attempt ends before one fails the probe: none is left running unawaited.
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        results = [r for r in outcomes if not isinstance(r, BaseException)]
        protocols = tuple(r for r in results if isinstance(r, ProtocolSupport))
        versions = tuple(r for r in results if isinstance(r, TlsVersionSupport))
        standard = next((r for r in results if isinstance(r, StandardSecurityResult)), None)
        if standard is not None and standard.refused:
            standard = None
        ntlm_info = next((r for r in results if isinstance(r, NtlmInfo)), None)
    return ProbeResult(
        target=target,
        address=address,
        negotiation=negotiation,
        tls=tls,
        protocols=protocols,
        tls_versions=versions,
        timings=timings,
        error=failure,
        standard_security=standard,
        ntlm=ntlm_info,
    )
