"""Standard RDP Security: which encryption methods a host still accepts (MS-RDPBCGR 5.3).

One connection per method, as the Windows client opens it when set to RDP security:
an X.224 Connection Request asking for PROTOCOL_RDP, then an MCS Connect-Initial whose
CS_SECURITY offers exactly that method. The host accepts the method when SC_SECURITY
selects it. Every answer also tells the encryption level, the RDP version (SC_CORE)
and the kind of server certificate. Nothing past the Connect-Response is sent: no
keys are exchanged and no credentials leave this machine.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from rdptrust.errors import ConnectError, ProtocolError, RemoteProtocolError, TransportError
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import EncryptionMethodSupport, StandardSecurityResult
from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.net.connection import RdpConnection
from rdptrust.protocol.gcc import (
    ENCRYPTION_METHOD_NAMES,
    MCS_OFFSET,
    ClientConnectInitial,
    ClientSecurityData,
    EncryptionMethod,
    ServerConnectResponse,
    encryption_level_name,
    parse_server_connect_response,
)
from rdptrust.protocol.mcs import (
    DisconnectProviderUltimatum,
    is_disconnect_provider_ultimatum,
    parse_disconnect_provider_ultimatum,
)
from rdptrust.protocol.x224 import (
    PROBE_COOKIE,
    X224_DATA,
    ConnectionRequest,
    NegotiationFailure,
    NegotiationRequest,
    NegotiationResponse,
    parse_connection_confirm,
    parse_data_tpdu,
)


def method_name(value: int) -> str:
    """``40BIT``, ``128BIT``, ``56BIT``, ``FIPS``, ``NONE`` or the hex value."""
    if value == 0:
        return "NONE"
    try:
        return ENCRYPTION_METHOD_NAMES[EncryptionMethod(value)]
    except (KeyError, ValueError):
        return f"0x{value:08x}"


@dataclass(frozen=True)
class _Attempt:
    support: EncryptionMethodSupport
    response: ServerConnectResponse | None


def _disconnect(packet: bytes) -> DisconnectProviderUltimatum | None:
    """The MCS Disconnect Provider Ultimatum in *packet*, if that is what it holds."""
    if (
        len(packet) < MCS_OFFSET + 2
        or packet[5] != X224_DATA
        or not is_disconnect_provider_ultimatum(packet[MCS_OFFSET:])
    ):
        return None
    parsed = parse_data_tpdu(packet)
    return None if parsed is None else parse_disconnect_provider_ultimatum(parsed[0])


def _refusal(packet: bytes) -> str | None:
    """Why the host turned Standard RDP Security down at the X.224 step, or ``None``."""
    ultimatum = _disconnect(packet)
    if ultimatum is not None:
        return f"MCS disconnect ({ultimatum.reason_name})"
    parsed = parse_connection_confirm(packet)
    assert parsed is not None  # a whole TPKT packet
    negotiation = parsed[0].negotiation
    if isinstance(negotiation, NegotiationFailure):
        return negotiation.name
    if (
        isinstance(negotiation, NegotiationResponse)
        and negotiation.selected_protocol != SecurityProtocol.RDP
    ):
        return f"selected {negotiation.selected_protocol!r} instead of RDP"
    return None


async def _exchange(
    target: Target, method: EncryptionMethod, deadline: float
) -> ServerConnectResponse | str | None:
    """Run one attempt: the Connect-Response, why the host refused RDP at the X.224
    step, or ``None`` when it closed the connection instead of answering the method."""
    conn = await RdpConnection.open(target, deadline)
    try:
        # RDP_NEG_REQ asking for PROTOCOL_RDP, as mstsc sends when set to RDP security:
        # a host that requires TLS then says so with a failure code (old hosts ignore it).
        request = ConnectionRequest(
            cookie=PROBE_COOKIE, negotiation=NegotiationRequest(SecurityProtocol.RDP)
        )
        await conn.send_raw(request.to_bytes(), deadline, "the X.224 Connection Request")
        packet = await conn.recv_tpkt(deadline, "the X.224 Connection Request")
        if not packet:
            raise ConnectError(
                f"{target}: closed the connection without answering the X.224 request",
                target.host,
                target.port,
            )
        refused = _refusal(packet)
        if refused is not None:
            return refused
        initial = ClientConnectInitial.build(ClientSecurityData(method))
        send_error: TransportError | None = None
        try:
            await conn.send_raw(initial.to_bytes(), deadline, "the MCS Connect-Initial")
        except TransportError as exc:
            # A host that refuses RDP may disconnect right after the Connection Confirm;
            # its MCS disconnect is then already waiting to be read.
            send_error = exc
        try:
            packet = await conn.recv_tpkt(deadline, "the MCS Connect-Initial")
        except TransportError:
            if send_error is not None:
                raise send_error from None
            raise
        if not packet:
            return None  # closed instead of answering: no method in common
        ultimatum = _disconnect(packet)
        if ultimatum is not None:
            return f"MCS disconnect ({ultimatum.reason_name})"
        parsed = parse_server_connect_response(packet)
        assert parsed is not None  # a whole TPKT packet
        return parsed[0]
    except RemoteProtocolError as exc:
        raise RemoteProtocolError(f"{target}: bad answer to Standard RDP Security: {exc}") from exc
    finally:
        await conn.close()


async def _attempt(target: Target, method: EncryptionMethod, timeout: float) -> _Attempt:
    name = ENCRYPTION_METHOD_NAMES[method]
    try:
        answer = await _exchange(target, method, time.monotonic() + timeout)
    except (TransportError, ProtocolError) as exc:
        error = ProbeFailure.from_exception(exc)
        return _Attempt(EncryptionMethodSupport(name, None, None, None, None, error), None)
    if isinstance(answer, str):
        return _Attempt(EncryptionMethodSupport(name, None, None, None, answer, None), None)
    if answer is None:
        return _Attempt(EncryptionMethodSupport(name, False, None, None, None, None), None)
    security = answer.conference.security if answer.conference else None
    if security is None:
        # A bare MCS result (or no SC_SECURITY): the host turned the settings down.
        failure: ProbeFailure | None = None
        if answer.mcs.result != 0:
            failure = ProbeFailure("refused", f"MCS result {answer.mcs.result_name}")
        return _Attempt(EncryptionMethodSupport(name, False, None, None, None, failure), answer)
    support = EncryptionMethodSupport(
        name,
        security.encryption_method == method,
        method_name(security.encryption_method),
        encryption_level_name(security.encryption_level),
        None,
        None,
    )
    return _Attempt(support, answer)


async def probe_standard_security(
    target: Target, *, timeout: float = 10.0, pause: float = 0.0
) -> StandardSecurityResult:
    """Try each encryption method on its own connection (concurrently unless *pause*).

    *timeout* bounds each connection. With *pause* > 0 the attempts run one after the
    other with that many seconds between them, for hosts that drop quick reconnects.
    """
    start = time.monotonic()
    methods = list(ENCRYPTION_METHOD_NAMES)
    if pause > 0:
        attempts = []
        for index, method in enumerate(methods):
            if index:
                await asyncio.sleep(pause)
            attempts.append(await _attempt(target, method, timeout))
    else:
        attempts = list(await asyncio.gather(*(_attempt(target, m, timeout) for m in methods)))
    first = next(
        (
            a.response
            for a in attempts
            if a.response is not None and a.response.conference is not None
        ),
        None,
    )
    level = rdp_version = cert_type = temporary = key_bits = None
    chain: tuple[bytes, ...] = ()
    if first is not None and first.conference is not None:
        core = first.conference.core
        security = first.conference.security
        rdp_version = core.version if core else None
        if security is not None:
            level = encryption_level_name(security.encryption_level)
            cert = security.certificate
            if cert is not None:
                cert_type = cert.type_name
                temporary = cert.temporary
                key_bits = cert.proprietary.key_bits if cert.proprietary else None
                chain = cert.x509_chain
    return StandardSecurityResult(
        methods=tuple(a.support for a in attempts),
        encryption_level=level,
        rdp_version=rdp_version,
        certificate_type=cert_type,
        certificate_temporary=temporary,
        certificate_key_bits=key_bits,
        x509_chain=chain,
        elapsed_ms=round((time.monotonic() - start) * 1000.0, 3),
    )
