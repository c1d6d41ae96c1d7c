"""The exporter as a service: SSRF, self-recursion, cross-site requests, crowded sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fixtures.lab import LabFactory
from rdptrust.lab.certs import LabCa, PkiUrls, make_host_credentials
from rdptrust.lab.runner import Lab
from rdptrust.monitor.config import parse_config, with_anchors
from rdptrust.monitor.exporter import Exporter
from rdptrust.net.httpserver import HttpRequest, HttpResponse, HttpServer

Samples = dict[str, list[Any]]


class Recorder:
    """A loopback HTTP server that records every request; answers by path."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.redirect_to: str | None = None
        self.server = HttpServer(self._answer)

    async def _answer(self, request: HttpRequest) -> HttpResponse:
        self.hits.append(request.target)
        if request.path.startswith("/redirect") and self.redirect_to is not None:
            return HttpResponse(302, b"", headers=(("Location", self.redirect_to),))
        return HttpResponse(200, b"not a CRL", "application/pkix-crl")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    found = Recorder()
    async with found.server:
        yield found


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20, trust_env=False) as http:
        yield http


def samples_of(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


async def host_naming(lab_factory: LabFactory, urls: PkiUrls, tmp_path: Path) -> tuple[Lab, Path]:
    """A lab RDP host whose CA-issued certificate names *urls*; returns it and its root."""
    ca = LabCa.generate(urls=urls)
    lab = await lab_factory(require="HYBRID")
    lab.set_credentials(make_host_credentials("ca", ca=ca, urls=urls))
    return lab, ca.write_root_pem(tmp_path / "root.pem")


def diagnose_config(root: Path, tmp_path: Path, **extra: Any) -> Any:
    module = {
        "timeout": 6,
        "enumerate": False,
        "diagnose": True,
        "system_trust": False,
        "ca_files": [str(root)],
        "known_hosts": str(tmp_path / "kh.json"),
        **extra,
    }
    return with_anchors(parse_config({"modules": {"default": module}}))


ADMIN = "/admin/users/1/delete?really=yes"


async def test_ssrf_with_the_default_config_reaches_nothing_internal(
    lab_factory: LabFactory, recorder: Recorder, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # Given a certificate whose CRL, OCSP and AIA URLs name an internal admin page
    urls = PkiUrls(
        crl=recorder.url(ADMIN),
        ocsp=recorder.url(ADMIN + "&ocsp"),
        ca_issuers=recorder.url(ADMIN + "&aia"),
        issuer_crl=recorder.url(ADMIN + "&issuer"),
    )
    lab, root = await host_naming(lab_factory, urls, tmp_path)
    # When the exporter's diagnose module (no fetch_allow) scrapes the host
    async with Exporter(diagnose_config(root, tmp_path), port=0) as server:
        response = await client.get(f"{server.url}/probe", params={"target": str(lab.target)})
    # Then the internal server saw no request, and the metrics say what was skipped
    assert response.status_code == 200
    assert recorder.hits == []
    samples = samples_of(response.text)
    outcomes = {
        (s.labels["purpose"], s.labels["outcome"]) for s in samples["rdptrust_retrieval_seconds"]
    }
    assert ("crl", "skipped") in outcomes
    assert ("ocsp", "skipped") in outcomes
    # (the certificate trust lists go to the operator's list folder, not to the host's URLs)
    lists = ("root_list", "disallowed_list", "pin_rules")
    assert {o for p, o in outcomes if p not in lists} == {"skipped"}
    assert samples["rdptrust_retrievals_skipped"][0].value >= 3


async def test_allowed_networks_are_fetched_and_redirects_rechecked(
    lab_factory: LabFactory, recorder: Recorder, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # Given a certificate whose CRL redirects to the exporter's own /probe
    urls = PkiUrls(crl=recorder.url("/redirect/crl"), ocsp=recorder.url("/ocsp"))
    lab, root = await host_naming(lab_factory, urls, tmp_path)
    config = diagnose_config(root, tmp_path, fetch_allow=["127.0.0.0/8"])
    async with Exporter(config, port=0) as server:
        recorder.redirect_to = f"{server.url}/probe?target={lab.target}"
        response = await client.get(f"{server.url}/probe", params={"target": str(lab.target)})
        own = samples_of((await client.get(f"{server.url}/metrics")).text)
    # Then the allowed loopback responder was asked, the redirect to the exporter was not
    # followed, and the exporter answered one probe: the test's own
    assert response.status_code == 200
    assert "/ocsp" in recorder.hits
    assert "/redirect/crl" in recorder.hits
    samples = samples_of(response.text)
    crl = [s for s in samples["rdptrust_retrieval_seconds"] if s.labels["purpose"] == "crl"]
    assert [s.labels["outcome"] for s in crl] == ["skipped"]
    probes = [
        s.value
        for s in own["rdptrust_exporter_http_requests_total"]
        if s.labels["path"] == "/probe"
    ]
    assert probes == [1.0]


async def test_a_certificate_naming_the_exporter_itself_is_not_fetched(
    lab_factory: LabFactory, client: httpx.AsyncClient, tmp_path: Path, unused_tcp_port: int
) -> None:
    # Given a certificate whose CRL and OCSP URLs are the exporter's own /probe, and a
    # module that allows loopback: the exporter's listening address stays refused
    port = unused_tcp_port
    own = f"http://127.0.0.1:{port}/probe?target=127.0.0.1:1"
    lab, root = await host_naming(lab_factory, PkiUrls(crl=own, ocsp=own), tmp_path)
    config = diagnose_config(root, tmp_path, fetch_allow=["127.0.0.0/8"])
    async with Exporter(config, port=port) as server:
        first = await client.get(f"{server.url}/probe", params={"target": str(lab.target)})
        own_metrics = samples_of((await client.get(f"{server.url}/metrics")).text)
    assert first.status_code == 200
    samples = samples_of(first.text)
    revocation = [
        s for s in samples["rdptrust_retrieval_seconds"] if s.labels["purpose"] in ("crl", "ocsp")
    ]
    assert revocation
    assert {s.labels["outcome"] for s in revocation} == {"skipped"}
    probes = [
        s.value
        for s in own_metrics["rdptrust_exporter_http_requests_total"]
        if s.labels["path"] == "/probe"
    ]
    assert probes == [1.0]


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
async def test_cross_site_requests_are_refused_with_403(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    config = with_anchors(parse_config({"modules": {"default": {"system_trust": False}}}))
    async with Exporter(config, port=0) as server:
        refused = await client.get(
            f"{server.url}/probe", params={"target": "127.0.0.1:1"}, headers=headers
        )
        health = await client.get(f"{server.url}/-/healthy", headers=headers)
        own = await client.get(f"{server.url}/-/healthy", headers={"Origin": server.url})
        metrics = (await client.get(f"{server.url}/metrics")).text
    assert refused.status_code == 403
    assert health.status_code == 403
    assert own.status_code == 200  # a page of the exporter itself is its own origin
    assert 'rdptrust_exporter_rejected_requests_total{reason="cross_site"} 2.0' in metrics


async def test_idle_sockets_and_slow_loris_do_not_starve_a_scrape(
    client: httpx.AsyncClient,
) -> None:
    # Given an exporter at its connection cap: half idle sockets, half slow heads
    config = with_anchors(parse_config({"modules": {"default": {"system_trust": False}}}))
    cap = 32
    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def loris(writer: asyncio.StreamWriter) -> None:
        writer.write(b"GET /probe?target=")
        for _ in range(30):
            await asyncio.sleep(0.2)
            writer.write(b"a")

    async with Exporter(config, port=0, max_connections=cap) as server:
        for _ in range(cap):
            streams.append(await asyncio.open_connection("127.0.0.1", server.port))
        lorises = [asyncio.create_task(loris(w)) for _, w in streams[cap // 2 :]]
        await asyncio.sleep(0.3)
        try:
            # When a scrape and a health check arrive
            start = time.monotonic()
            health = await client.get(f"{server.url}/-/healthy")
            health_s = time.monotonic() - start
            probe = await client.get(
                f"{server.url}/probe", params={"target": "127.0.0.1:1", "timeout": "2"}
            )
        finally:
            for task in lorises:
                task.cancel()
            for _, writer in streams:
                writer.close()
    # Then both are answered at once
    assert health.status_code == 200
    assert health_s < 1.0
    assert probe.status_code == 200
    assert "rdptrust_probe_success 0.0" in probe.text
