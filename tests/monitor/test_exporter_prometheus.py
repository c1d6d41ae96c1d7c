"""A real Prometheus (Debian ``prometheus``) scrapes the exporter with the README's configuration.

The scrape configuration and the alert rules are taken from README.md, so the
documented configuration is the one tested.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from monitor_hosts import expiring_in

from rdptrust.lab.certs import HostCredentials, LabCa, windows_self_signed
from rdptrust.lab.runner import Lab
from rdptrust.monitor.config import parse_config, with_anchors
from rdptrust.monitor.exporter import Exporter

HostFactory = Callable[[HostCredentials], Awaitable[Lab]]
README = Path(__file__).resolve().parents[2] / "README.md"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(
        not Path(PROMETHEUS).exists(),
        reason="prometheus is not installed (Debian package prometheus; .ci/run installs it)",
    ),
]


def readme_yaml(containing: str) -> Any:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    found = [b for b in blocks if containing in b]
    assert len(found) == 1, f"README.md must hold one yaml block with {containing!r}"
    return yaml.safe_load(found[0])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def prometheus(tmp_path: Path) -> AsyncIterator[Callable[[dict[str, Any]], Awaitable[str]]]:
    """Factory: ``await prometheus(config)`` starts Prometheus, returns its URL; stops it."""
    procs: list[asyncio.subprocess.Process] = []
    logs: list[Path] = []

    async def start(config: dict[str, Any]) -> str:
        port = free_port()
        config_file = tmp_path / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        log = tmp_path / "prometheus.log"
        logs.append(log)
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                PROMETHEUS,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if proc.returncode is not None:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/-/ready")).status_code == 200:
                        return url
                await asyncio.sleep(0.2)
        raise AssertionError("Prometheus did not start:\n" + log.read_text(errors="replace"))

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def query(client: httpx.AsyncClient, url: str, promql: str) -> list[dict[str, Any]]:
    response = await client.get(f"{url}/api/v1/query", params={"query": promql})
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def wait_for(
    client: httpx.AsyncClient,
    url: str,
    promql: str,
    ready: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = await query(client, url, promql)
        if ready(result):
            return result
        await asyncio.sleep(0.5)
    raise AssertionError(f"{promql}: not ready after {timeout} s; last result {result}")


def by_instance(result: list[dict[str, Any]]) -> dict[str, float]:
    return {item["metric"]["instance"]: float(item["value"][1]) for item in result}


async def test_prometheus_scrapes_the_exporter_with_the_readme_config(
    rdp_host: HostFactory,
    prometheus: Callable[[dict[str, Any]], Awaitable[str]],
    lab_ca: LabCa,
    ca_file: Path,
    ca_credentials: HostCredentials,
    expired_credentials: HostCredentials,
    refused_port: int,
    tmp_path: Path,
) -> None:
    # Given RDP hosts with the lab's certificates and an exporter in front of them
    served = {
        "self-signed": windows_self_signed("127.0.0.1"),
        "ca": ca_credentials,
        "expired": expired_credentials,
        "expiring": expiring_in(10, lab_ca),
    }
    hosts = {name: await rdp_host(creds) for name, creds in served.items()}
    targets = {name: str(host.target) for name, host in hosts.items()}
    unreachable = f"127.0.0.1:{refused_port}"
    module = {
        "timeout": 5,
        "enumerate": False,
        "system_trust": False,
        "ca_files": [str(ca_file)],
        "known_hosts": str(tmp_path / "no-pins.json"),
    }
    config = with_anchors(parse_config({"modules": {"default": module}}))

    async with Exporter(config, port=0) as exporter:
        # and Prometheus configured as the README says, scraping every second
        scrape = readme_yaml("scrape_configs:")
        rules = readme_yaml("groups:")
        (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
        probe_job, own_job = scrape["scrape_configs"]
        probe_job["static_configs"] = [{"targets": [*targets.values(), unreachable]}]
        for rule in probe_job["relabel_configs"]:
            if rule.get("target_label") == "__address__":
                rule["replacement"] = f"127.0.0.1:{exporter.port}"
        own_job["static_configs"] = [{"targets": [f"127.0.0.1:{exporter.port}"]}]
        url = await prometheus(
            {
                "global": {
                    "scrape_interval": "1s",
                    "scrape_timeout": "1s",
                    "evaluation_interval": "1s",
                },
                "rule_files": [str(tmp_path / "rules.yml")],
                **scrape,
            }
        )

        async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
            # When every target has been scraped
            result = await wait_for(
                client,
                url,
                "rdptrust_cert_not_after_timestamp_seconds",
                lambda r: len(r) == len(targets),
            )

            # Then each target's not_after is its certificate's, under its own instance label
            got = by_instance(result)
            for name, creds in served.items():
                assert got[targets[name]] == creds.leaf.not_valid_after_utc.timestamp(), name
            success = by_instance(
                await wait_for(
                    client, url, "rdptrust_probe_success", lambda r: len(r) == len(targets) + 1
                )
            )
            assert success == {**{t: 1.0 for t in targets.values()}, unreachable: 0.0}
            trusted = by_instance(await query(client, url, "rdptrust_chain_trusted"))
            assert trusted[targets["ca"]] == 1.0
            assert trusted[targets["self-signed"]] == 0.0

            # and the README's expiry alert fires for the expiring and expired hosts only
            alerts = await wait_for(
                client,
                url,
                'ALERTS{alertname="RdpCertificateExpiresSoon"}',
                lambda r: len(r) >= 2,
                timeout=10,
            )
            assert {a["metric"]["instance"] for a in alerts} == {
                targets["expiring"],
                targets["expired"],
            }

            # When the self-signed host makes a new certificate
            hosts["self-signed"].regenerate_certificate()

            # Then rdptrust_cert_changed turns 1 and the README's alert fires
            changed = f'rdptrust_cert_changed{{instance="{targets["self-signed"]}"}} == 1'
            await wait_for(client, url, changed, lambda r: len(r) == 1, timeout=15)
            firing = await wait_for(
                client,
                url,
                'ALERTS{alertname="RdpCertificateChanged",alertstate="firing"}',
                lambda r: len(r) == 1,
                timeout=10,
            )
            assert firing[0]["metric"]["instance"] == targets["self-signed"]

            # and the exporter's own metrics are scraped too. Its counter is read at the
            # own job's last scrape, which may fall inside the first round of probes: wait
            # until a scrape after that round has landed.
            own = await query(client, url, 'up{job="rdptrust_exporter"}')
            assert [float(item["value"][1]) for item in own] == [1.0]
            await wait_for(
                client,
                url,
                f"sum(rdptrust_exporter_scrapes_total) >= {len(targets) + 1}",
                lambda r: len(r) == 1,
                timeout=10,
            )
