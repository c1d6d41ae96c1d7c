"""FreeRDP's client (xfreerdp /sec:rdp) against our MCS codecs: its Connect-Initial parses,
and it takes the lab's Connect-Response and goes on to the next step of the connection."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from fixtures.peers import Display
from rdptrust.lab.standard_security import StandardSecurityPolicy, connect_response_for
from rdptrust.protocol.gcc import (
    ClientConnectInitial,
    EncryptionLevel,
    EncryptionMethod,
    parse_client_connect_initial,
)
from rdptrust.protocol.tpkt import packet_length
from rdptrust.protocol.x224 import (
    ConnectionConfirm,
    ConnectionRequest,
    parse_connection_request,
)

pytestmark = pytest.mark.peer


async def _read_tpkt(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(4)
    length = packet_length(header) or 0
    return header + await reader.readexactly(length - 4)


async def test_xfreerdp_connect_initial_and_our_response(
    xvfb_display: Display, tmp_path: Path
) -> None:
    binary = shutil.which("xfreerdp")
    if binary is None:
        pytest.skip("xfreerdp is not installed (Debian package freerdp2-x11)")
    seen: dict[str, object] = {}
    policy = StandardSecurityPolicy(EncryptionMethod.BIT_128, EncryptionLevel.HIGH)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = parse_connection_request(await _read_tpkt(reader))
            assert request is not None
            seen["request"] = request[0]
            writer.write(ConnectionConfirm(negotiation=None).to_bytes())
            await writer.drain()
            packet = await _read_tpkt(reader)
            parsed = parse_client_connect_initial(packet)
            assert parsed is not None
            seen["initial"] = parsed[0]
            response = connect_response_for(parsed[0], policy, 0)
            assert response is not None
            writer.write(response.to_bytes())
            await writer.drain()
            seen["next"] = await asyncio.wait_for(_read_tpkt(reader), 10)
        except (asyncio.IncompleteReadError, TimeoutError, OSError) as exc:
            seen["error"] = exc
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        # Given xfreerdp asked to use Standard RDP Security (dummy credentials for a
        # local test server; nothing gets that far)
        proc = await asyncio.create_subprocess_exec(
            binary,
            f"/v:127.0.0.1:{port}",
            "/sec:rdp",
            "+auth-only",
            "/u:x",
            "/p:y",
            "/cert:ignore",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DISPLAY": xvfb_display.name},
        )
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    finally:
        server.close()
        await server.wait_closed()
    # Then its Connection Request had no RDP_NEG_REQ and its Connect-Initial parsed
    request = seen.get("request")
    assert isinstance(request, ConnectionRequest), seen
    assert request.negotiation is None
    initial = seen.get("initial")
    assert isinstance(initial, ClientConnectInitial), seen
    assert initial.conference.core is not None
    assert initial.conference.core.version >= 0x00080004
    assert initial.conference.security is not None
    assert initial.conference.security.encryption_methods & EncryptionMethod.BIT_128
    # and after our Connect-Response it went on: the next PDU is an MCS domain PDU
    # (Erect Domain Request), not a disconnect
    nxt = seen.get("next")
    assert isinstance(nxt, bytes), seen
    assert nxt[4:7] == b"\x02\xf0\x80"
    assert nxt[7] >> 2 == 1, nxt.hex(" ")  # DomainMCSPDU erectDomainRequest
