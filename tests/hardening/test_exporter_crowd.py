"""The exporter at its default connection cap (256): 256 idle connections and slow loris
heads on top still leave a legitimate scrape and the health check answered at once.

The HTTP core (:mod:`rdptrust.net.httpserver`) caps connections; at the cap a new one
takes the place of the connection that has waited longest for a request, and a head that
has not arrived within the header deadline is refused.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from rdptrust.monitor.config import parse_config, with_anchors
from rdptrust.monitor.exporter import Exporter

IDLE = 256
LORISES = 16


async def test_256_idle_connections_and_slow_loris_do_not_starve_a_scrape() -> None:
    config = with_anchors(parse_config({"modules": {"default": {"system_trust": False}}}))
    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def loris(writer: asyncio.StreamWriter) -> None:
        writer.write(b"GET /probe?target=")
        for _ in range(100):
            await asyncio.sleep(0.2)
            writer.write(b"a")
            await writer.drain()

    server = Exporter(config, port=0)  # the default cap
    assert server.max_connections == IDLE
    async with server:
        # Given 256 connections that never send a byte, then slow heads on top
        for _ in range(IDLE):
            streams.append(await asyncio.open_connection("127.0.0.1", server.port))
        lorises = []
        for _ in range(LORISES):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            streams.append((reader, writer))
            lorises.append(asyncio.create_task(loris(writer)))
        await asyncio.sleep(0.5)
        try:
            async with httpx.AsyncClient(timeout=20, trust_env=False) as client:
                # When a health check and a scrape arrive
                start = time.monotonic()
                health = await client.get(f"{server.url}/-/healthy")
                health_s = time.monotonic() - start
                start = time.monotonic()
                probe = await client.get(
                    f"{server.url}/probe", params={"target": "127.0.0.1:1", "timeout": "2"}
                )
                probe_s = time.monotonic() - start
                metrics = (await client.get(f"{server.url}/metrics")).text
        finally:
            for task in lorises:
                task.cancel()
            for _, writer in streams:
                writer.close()
    # Then both are answered at once, and the connections that made room are counted
    assert health.status_code == 200
    assert health_s < 1.0, health_s
    assert probe.status_code == 200
    assert probe_s < 2 + 2.0, probe_s
    assert "rdptrust_probe_success 0.0" in probe.text
    rejected = [
        line
        for line in metrics.splitlines()
        if line.startswith('rdptrust_exporter_rejected_requests_total{reason="connections"}')
    ]
    assert rejected
    assert float(rejected[0].split()[-1]) >= LORISES
