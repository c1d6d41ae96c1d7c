"""The lab's records of what it served are bounded; its counts stay exact."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from rdptrust.lab.certs import make_host_credentials
from rdptrust.lab.pki import PkiResponder
from rdptrust.lab.rdp import RdpEndpoint, RdpPolicy, server_context
from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.net.connection import RdpConnection
from rdptrust.net.probe import probe_host
from rdptrust.protocol.x224 import ConnectionConfirm, ConnectionRequest, NegotiationRequest

P = SecurityProtocol


async def negotiate(target: Target, cookie: str) -> None:
    deadline = time.monotonic() + 5
    conn = await RdpConnection.open(target, deadline)
    try:
        request = ConnectionRequest(cookie=cookie, negotiation=NegotiationRequest(P.RDP))
        confirm = await conn.negotiate(request, deadline)
    finally:
        await conn.close()
    assert isinstance(confirm, ConnectionConfirm)


async def until(check: Callable[[], bool], what: str) -> None:
    """Wait (5 s at most) until *check()* is true: the server records after the client."""
    deadline = time.monotonic() + 5
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def test_the_endpoint_keeps_the_last_connections_and_counts_all() -> None:
    # Given an endpoint that keeps 4 records
    policy = RdpPolicy(protocols=frozenset({P.RDP}))
    async with RdpEndpoint(policy, None, connections_kept=4) as rdp:
        # When 2 clients close before sending a request, then 10 negotiate
        for _ in range(2):
            _, writer = await asyncio.open_connection("127.0.0.1", rdp.port)
            writer.close()
            await writer.wait_closed()
        await until(lambda: rdp.counts.connections == 2, "the closed connections were recorded")
        for index in range(10):
            await negotiate(rdp.target, f"client{index}")
        # Then the record holds the last 4, and the counts all 12
        assert len(rdp.connections) == 4
        assert [r.request.cookie for r in rdp.connections if r.request] == [
            "client6",
            "client7",
            "client8",
            "client9",
        ]
        assert rdp.counts.connections == 12
        assert rdp.counts.unparsed == 2
        assert rdp.counts.ntlm_negotiate == rdp.counts.authenticate == 0


async def test_ntlm_counts_stay_exact_beyond_the_bound(tmp_path: Path) -> None:
    # Given a CredSSP endpoint that keeps one record
    chain, key = make_host_credentials("self-signed").write_pem(tmp_path)
    policy = RdpPolicy(protocols=frozenset({P.SSL, P.HYBRID}))
    async with RdpEndpoint(policy, server_context(chain, key), connections_kept=1) as rdp:
        # When three probes each make a main connection and an NTLM one
        for _ in range(3):
            result = await probe_host(
                rdp.target,
                timeout=5.0,
                enumerate_protocols=False,
                enumerate_tls_versions=False,
                standard_security=False,
                ntlm=True,
            )
            assert result.error is None
        # Then one record is kept, and every NTLM NEGOTIATE is counted
        await until(lambda: rdp.counts.connections == 6, "six connections were recorded")
        assert len(rdp.connections) == 1
        assert rdp.counts.ntlm_negotiate == 3
        assert rdp.counts.authenticate == 0


async def test_the_responder_keeps_the_last_requests_and_counts_all() -> None:
    # Given a responder that keeps 3 requests
    async with (
        PkiResponder(None, requests_kept=3) as pki,
        httpx.AsyncClient(trust_env=False, timeout=5.0) as client,
    ):
        # When it is asked for the root list 5 times, then twice for an unknown path
        for _ in range(5):
            assert (await client.get(pki.root_list_url)).status_code == 200
        for _ in range(2):
            await client.get(f"{pki.base_url}/nothing-here")
        # Then it holds the last 3 requests, and counts all 7 by purpose
        assert [r.purpose for r in pki.requests] == ["root_list", "other", "other"]
        assert pki.request_counts == {"root_list": 5, "other": 2}
