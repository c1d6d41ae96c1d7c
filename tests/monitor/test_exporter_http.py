"""The exporter over real loopback HTTP: /probe against RDP hosts, /metrics, bad requests."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from monitor_hosts import RDPTRUST, subprocess_env
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from fixtures.lab import LabFactory
from rdptrust.engine import AssessOptions
from rdptrust.lab.certs import HostCredentials, windows_self_signed
from rdptrust.lab.runner import Lab
from rdptrust.model.assessment import Assessment
from rdptrust.model.target import Target
from rdptrust.monitor.config import ExporterConfig, parse_config, with_anchors
from rdptrust.monitor.exporter import Exporter
from rdptrust.pki.pinning import KnownHosts, pin_from_certificate

HostFactory = Callable[[HostCredentials], Awaitable[Lab]]


def make_config(ca_file: Path, **extra: Any) -> ExporterConfig:
    lab = {
        "timeout": 5,
        "enumerate": False,
        "system_trust": False,
        "ca_files": [str(ca_file)],
        "known_hosts": str(ca_file.parent / "no-pins.json"),
    }
    lab.update(extra)
    document = {
        "max_concurrent_probes": 4,
        "modules": {"default": dict(lab), "enum": {**lab, "enumerate": True}},
    }
    return with_anchors(parse_config(document))


@pytest.fixture
async def exporter(ca_file: Path) -> AsyncIterator[Exporter]:
    async with Exporter(make_config(ca_file), port=0) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20, trust_env=False) as http:
        yield http


Samples = dict[str, list[Sample]]


async def scrape(
    client: httpx.AsyncClient, exporter: Exporter, target: str, **params: str
) -> Samples:
    response = await client.get(f"{exporter.url}/probe", params={"target": target, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    found = [s for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, samples.get(name))
    return found[0].value


async def test_self_signed(
    rdp_host: HostFactory, exporter: Exporter, client: httpx.AsyncClient
) -> None:
    creds = windows_self_signed("127.0.0.1")
    host = await rdp_host(creds)
    samples = await scrape(client, exporter, str(host.target))
    assert value(samples, "rdptrust_probe_success") == 1
    assert value(samples, "rdptrust_cert_self_signed") == 1
    assert value(samples, "rdptrust_chain_trusted") == 0
    assert value(samples, "rdptrust_cert_not_after_timestamp_seconds") == (
        creds.leaf.not_valid_after_utc.timestamp()
    )
    info = samples["rdptrust_cert_info"][0].labels
    assert info == {"subject": "CN=127.0.0.1", "issuer": "CN=127.0.0.1", "sha256": creds.sha256}
    assert value(samples, "rdptrust_problem", code="self-signed-not-pinned") == 1
    assert value(samples, "rdptrust_verdict") == 1
    assert value(samples, "rdptrust_cert_changed") == 0
    assert 0 < value(samples, "rdptrust_tls_handshake_seconds") < 5
    assert 0 < value(samples, "rdptrust_probe_duration_seconds") < 5
    assert "rdptrust_protocol_accepted" not in samples  # enumeration is off in this module
    assert "rdptrust_predicted_stall_seconds" not in samples  # no diagnosis


async def test_ca_issued_trusted_with_enumeration(
    rdp_host: HostFactory,
    exporter: Exporter,
    client: httpx.AsyncClient,
    ca_credentials: HostCredentials,
) -> None:
    host = await rdp_host(ca_credentials)
    samples = await scrape(client, exporter, str(host.target), module="enum")
    assert value(samples, "rdptrust_probe_success") == 1
    assert value(samples, "rdptrust_cert_self_signed") == 0
    assert value(samples, "rdptrust_chain_trusted") == 1
    assert value(samples, "rdptrust_verdict") == 0
    assert "rdptrust_problem" not in samples
    assert value(samples, "rdptrust_cert_not_after_timestamp_seconds") == (
        ca_credentials.leaf.not_valid_after_utc.timestamp()
    )
    # NLA required: CredSSP accepted, plain TLS and Standard RDP Security refused
    for protocol in ("HYBRID", "HYBRID_EX"):
        assert value(samples, "rdptrust_protocol_accepted", protocol=protocol) == 1
    for protocol in ("RDP", "SSL"):
        assert value(samples, "rdptrust_protocol_accepted", protocol=protocol) == 0
    assert value(samples, "rdptrust_protocol_accepted", protocol="RDSTLS") == 0
    assert value(samples, "rdptrust_tls_version_accepted", version="TLSv1.2") == 1


async def test_expired(
    rdp_host: HostFactory,
    exporter: Exporter,
    client: httpx.AsyncClient,
    expired_credentials: HostCredentials,
) -> None:
    host = await rdp_host(expired_credentials)
    samples = await scrape(client, exporter, str(host.target))
    assert value(samples, "rdptrust_probe_success") == 1
    assert value(samples, "rdptrust_cert_not_after_timestamp_seconds") < time.time()
    assert value(samples, "rdptrust_problem", code="expired", severity="critical") == 1
    assert value(samples, "rdptrust_verdict") == 2


async def test_unreachable(
    exporter: Exporter, client: httpx.AsyncClient, refused_port: int
) -> None:
    samples = await scrape(client, exporter, f"127.0.0.1:{refused_port}")
    assert value(samples, "rdptrust_probe_success") == 0
    assert value(samples, "rdptrust_probe_failure_info", kind="connect") == 1
    assert "rdptrust_cert_not_after_timestamp_seconds" not in samples
    assert "rdptrust_chain_trusted" not in samples
    assert "rdptrust_verdict" not in samples


async def test_regenerated_certificate_sets_cert_changed(
    rdp_host: HostFactory, exporter: Exporter, client: httpx.AsyncClient
) -> None:
    host = await rdp_host(windows_self_signed("127.0.0.1"))
    first = await scrape(client, exporter, str(host.target))
    again = await scrape(client, exporter, str(host.target))
    assert value(first, "rdptrust_cert_changed") == 0
    assert value(again, "rdptrust_cert_changed") == 0
    assert "rdptrust_cert_last_change_timestamp_seconds" not in again

    # When the host makes a new self-signed certificate (the six-month recreation) ...
    before = time.time()
    renewed = host.regenerate_certificate()
    changed = await scrape(client, exporter, str(host.target))

    # ... the next scrape says so, and keeps saying so for the hold time.
    assert value(changed, "rdptrust_cert_changed") == 1
    assert changed["rdptrust_cert_info"][0].labels["sha256"] == renewed.sha256
    assert value(changed, "rdptrust_cert_last_change_timestamp_seconds") >= before - 1
    still = await scrape(client, exporter, str(host.target))
    assert value(still, "rdptrust_cert_changed") == 1


async def test_cert_changed_against_the_pinned_store(
    rdp_host: HostFactory, client: httpx.AsyncClient, ca_file: Path, tmp_path: Path
) -> None:
    pinned, served = windows_self_signed("127.0.0.1"), windows_self_signed("127.0.0.1")
    host = await rdp_host(served)
    store = tmp_path / "known_hosts.json"
    known = KnownHosts.load(store)
    known.add(pin_from_certificate(host.target, pinned.leaf))
    known.save()
    config = make_config(ca_file, known_hosts=str(store))
    async with Exporter(config, port=0) as server:
        samples = await scrape(client, server, str(host.target))
        assert value(samples, "rdptrust_cert_changed") == 1
        assert value(samples, "rdptrust_cert_pinned") == 0
        assert value(samples, "rdptrust_problem", code="pin-changed") == 1

        # Pinning what the host now serves clears it: trusted, pinned, unchanged.
        known.add(pin_from_certificate(host.target, served.leaf))
        known.save()
        samples = await scrape(client, server, str(host.target))
        assert value(samples, "rdptrust_cert_changed") == 0
        assert value(samples, "rdptrust_cert_pinned") == 1
        assert value(samples, "rdptrust_chain_trusted") == 1


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("", 400, "'target' parameter is missing"),
        ("target=", 400, "bad target"),
        ("target=bad%20host", 400, "bad target"),
        ("target=host:99999", 400, "out of range"),
        ("target=a:1&target=b:2", 400, "given 2 times"),
        ("target=127.0.0.1:1&module=nope", 400, "unknown module 'nope'"),
        ("target=127.0.0.1:1&timeout=abc", 400, "bad timeout"),
        ("target=127.0.0.1:1&timeout=-1", 400, "bad timeout"),
    ],
)
async def test_bad_probe_requests_get_400(
    exporter: Exporter, client: httpx.AsyncClient, query: str, status: int, says: str
) -> None:
    response = await client.get(f"{exporter.url}/probe?{query}")
    assert response.status_code == status
    assert says in response.text


async def test_other_paths_methods_and_oversized_requests(
    exporter: Exporter, client: httpx.AsyncClient
) -> None:
    assert (await client.get(f"{exporter.url}/nope")).status_code == 404
    assert (await client.post(f"{exporter.url}/probe", content=b"x")).status_code == 405
    assert (await client.get(f"{exporter.url}/-/healthy")).text == "OK\n"
    assert "module=NAME" in (await client.get(f"{exporter.url}/")).text
    huge = await client.get(f"{exporter.url}/probe", headers={"X-Pad": "a" * 20000})
    assert huge.status_code == 431
    head = await client.head(f"{exporter.url}/metrics")
    assert head.status_code == 200
    assert head.content == b""


async def test_own_metrics_count_scrapes_and_rejections(
    rdp_host: HostFactory, exporter: Exporter, client: httpx.AsyncClient, refused_port: int
) -> None:
    host = await rdp_host(windows_self_signed("127.0.0.1"))
    await scrape(client, exporter, str(host.target))
    await scrape(client, exporter, f"127.0.0.1:{refused_port}")
    await client.get(f"{exporter.url}/probe?target=bad%20host")
    response = await client.get(f"{exporter.url}/metrics")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    total = "rdptrust_exporter_scrapes_total"
    assert value(samples, total, module="default", result="success") == 1
    assert value(samples, total, module="default", result="failure") == 1
    assert value(samples, "rdptrust_exporter_rejected_requests_total", reason="bad_request") == 1
    assert value(samples, "rdptrust_exporter_scrape_duration_seconds_count", module="default") == 2
    assert value(samples, "rdptrust_exporter_probes_in_flight") == 0
    assert value(samples, "rdptrust_exporter_remembered_targets") == 1
    assert "process_cpu_seconds_total" in samples


async def test_timeout_parameter_caps_the_scrape(
    exporter: Exporter, client: httpx.AsyncClient, silent_port: int
) -> None:
    start = time.monotonic()
    samples = await scrape(client, exporter, f"127.0.0.1:{silent_port}", timeout="0.5")
    assert time.monotonic() - start < 2.0
    assert value(samples, "rdptrust_probe_success") == 0
    assert value(samples, "rdptrust_probe_failure_info", kind="timeout") == 1


async def test_prometheus_scrape_timeout_header_caps_the_scrape(
    exporter: Exporter, client: httpx.AsyncClient, silent_port: int
) -> None:
    start = time.monotonic()
    response = await client.get(
        f"{exporter.url}/probe",
        params={"target": f"127.0.0.1:{silent_port}"},
        headers={"X-Prometheus-Scrape-Timeout-Seconds": "1.2"},
    )
    assert response.status_code == 200
    assert time.monotonic() - start < 2.0
    assert "rdptrust_probe_success 0.0" in response.text


async def test_concurrent_probes_are_bounded(
    client: httpx.AsyncClient, ca_file: Path, silent_port: int
) -> None:
    config = make_config(ca_file)
    config = ExporterConfig(config.modules, 1, None, config.anchors)
    async with Exporter(config, port=0) as server:
        url = f"{server.url}/probe"
        target = f"127.0.0.1:{silent_port}"
        # Given one probe holding the only slot for 3 s
        first = asyncio.create_task(client.get(url, params={"target": target, "timeout": "3"}))
        deadline = time.monotonic() + 5
        while (
            "rdptrust_exporter_probes_in_flight 1.0"
            not in (await client.get(f"{server.url}/metrics")).text
        ):
            assert time.monotonic() < deadline, "the first probe never started"
            await asyncio.sleep(0.05)
        # When another scrape may wait only 0.5 s for a slot, it is refused with 503
        second = await client.get(url, params={"target": target, "timeout": "0.5"})
        assert second.status_code == 503
        assert "too many probes" in second.text
        # and the first one still answers.
        assert (await first).status_code == 200


async def test_a_broken_connection_does_not_stop_the_exporter(
    exporter: Exporter, client: httpx.AsyncClient
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", exporter.port)
    writer.write(b"\x16\x03\x01 not http at all\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.1 400")
    assert (await client.get(f"{exporter.url}/-/healthy")).status_code == 200


async def test_a_connection_is_kept_alive_between_scrapes(exporter: Exporter) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", exporter.port)
    try:
        for _ in range(2):
            writer.write(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert b"connection: close" not in head.lower()
            assert await asyncio.wait_for(reader.readexactly(3), 5) == b"OK\n"
    finally:
        writer.close()
        await writer.wait_closed()


async def test_the_exporter_command_serves_and_stops_on_sigterm(
    rdp_host: HostFactory, client: httpx.AsyncClient, tmp_path: Path, ca_file: Path
) -> None:
    config = tmp_path / "exporter.yml"
    config.write_text(f"modules:\n  default:\n    enumerate: false\n    ca_files: [{ca_file}]\n")
    host = await rdp_host(windows_self_signed("127.0.0.1"))
    proc = await asyncio.create_subprocess_exec(
        *RDPTRUST,
        "exporter",
        "--listen",
        "127.0.0.1:0",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=subprocess_env(),
    )
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        response = await client.get(f"{match.group(1)}/probe", params={"target": str(host.target)})
        assert response.status_code == 200
        assert "rdptrust_probe_success 1.0" in response.text
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_failing_probe_answers_500_and_the_exporter_goes_on(
    client: httpx.AsyncClient, ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    async def broken(target: Target, options: AssessOptions) -> Assessment:
        nonlocal calls
        calls += 1
        raise RuntimeError("a bug in a probe")

    async with Exporter(make_config(ca_file), port=0, observe_fn=broken) as server:
        response = await client.get(f"{server.url}/probe", params={"target": "127.0.0.1:1"})
        assert response.status_code == 500
        assert "Traceback" not in response.text
        metrics = (await client.get(f"{server.url}/metrics")).text
        assert "rdptrust_exporter_errors_total 1.0" in metrics
        assert 'rdptrust_exporter_scrapes_total{module="default",result="error"} 1.0' in metrics
    assert calls == 1
    assert "a bug in a probe" in caplog.text


async def test_diagnose_module_exports_the_predicted_stall_and_retrievals(
    lab_factory: LabFactory, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    lab = await lab_factory(root_list="blackhole")
    module = {
        "timeout": 3,
        "enumerate": False,
        "diagnose": True,
        "system_trust": False,
        "known_hosts": str(tmp_path / "kh.json"),
        "root_list_url": lab.root_list_url,
        # the trusted list only: the disallowed list has its own switch (WINDOWS.md §2)
        "disallowed_update": False,
    }
    config = with_anchors(parse_config({"modules": {"default": module}}))
    async with Exporter(config, port=0) as server:
        start = time.monotonic()
        samples = await scrape(client, server, str(lab.target))
        assert time.monotonic() - start < 3.5
    assert value(samples, "rdptrust_probe_success") == 1
    # The root list never answered: modelled as the Windows per-URL time-out.
    assert value(samples, "rdptrust_predicted_stall_seconds") == 15
    root_list = value(
        samples,
        "rdptrust_retrieval_seconds",
        purpose="root_list",
        # its sequence file, fetched first (WINDOWS.md §2)
        url=lab.root_list_url.replace("authrootstl.cab", "authrootseq.txt"),
        outcome="timeout",
    )
    assert 0.5 < root_list < 3
    assert value(samples, "rdptrust_problem", code="predicted-stall", severity="critical") == 1
    assert "rdptrust_cert_revoked" not in samples  # no revocation check for an untrusted root


async def test_diagnose_module_exports_revocation(
    lab_factory: LabFactory, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    lab = await lab_factory(cert="ca")
    assert lab.ca is not None
    module = {
        "timeout": 4,
        "enumerate": False,
        "diagnose": True,
        "system_trust": False,
        "ca_files": [str(lab.ca_cert_path)],
        "known_hosts": str(tmp_path / "kh.json"),
        "root_list_url": lab.root_list_url,
        # the lab's responders are on loopback, which the exporter refuses by default
        "fetch_allow": ["127.0.0.0/8"],
    }
    config = with_anchors(parse_config({"modules": {"default": module}}))
    async with Exporter(config, port=0) as server:
        samples = await scrape(client, server, str(lab.target))
        assert value(samples, "rdptrust_chain_trusted") == 1
        assert value(samples, "rdptrust_cert_revoked") == 0
        assert value(samples, "rdptrust_predicted_stall_seconds") < 1
        purposes = {s.labels["purpose"] for s in samples["rdptrust_retrieval_seconds"]}
        assert {"crl", "ocsp"} <= purposes

        lab.ca.revoke(lab.credentials.leaf.serial_number)
        samples = await scrape(client, server, str(lab.target))
        assert value(samples, "rdptrust_cert_revoked") == 1
        assert value(samples, "rdptrust_problem", code="revoked", severity="critical") == 1
        assert value(samples, "rdptrust_verdict") == 2
