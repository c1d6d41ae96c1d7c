"""exporter-toolkit's web.yml: TLS and basic auth, with httpx and with Prometheus itself."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_exporter_prometheus import prometheus, wait_for  # noqa: F401 (fixture)

from rdptrust.errors import UsageError
from rdptrust.monitor.config import parse_config, with_anchors
from rdptrust.monitor.exporter import Exporter
from rdptrust.monitor.webconfig import load_web_config, parse_web_config

PASSWORD = "s3cret-for-the-test"


def write_server_files(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made now."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rdptrust exporter test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "exporter.crt", directory / "exporter.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def web_yml(tmp_path: Path) -> Path:
    write_server_files(tmp_path)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(6)).decode().replace("$2b$", "$2y$")
    document = {
        "tls_server_config": {
            "cert_file": "exporter.crt",  # relative: next to web.yml
            "key_file": "exporter.key",
            "min_version": "TLS12",
        },
        "basic_auth_users": {"prometheus": hashed},
    }
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(document))
    return path


def plain_config() -> Any:
    return with_anchors(parse_config({"modules": {"default": {"system_trust": False}}}))


async def test_tls_and_basic_auth_from_web_yml(web_yml: Path) -> None:
    web = load_web_config(web_yml)
    verify = ssl.create_default_context(cafile=str(web_yml.parent / "exporter.crt"))
    async with Exporter(plain_config(), port=0, web=web) as server:
        assert server.url.startswith("https://127.0.0.1:")
        async with httpx.AsyncClient(timeout=10, verify=verify, trust_env=False) as client:
            anonymous = await client.get(f"{server.url}/-/healthy")
            wrong = await client.get(f"{server.url}/-/healthy", auth=("prometheus", "wrong"))
            stranger = await client.get(f"{server.url}/-/healthy", auth=("nobody", PASSWORD))
            right = await client.get(f"{server.url}/-/healthy", auth=("prometheus", PASSWORD))
            probe = await client.get(
                f"{server.url}/probe",
                params={"target": "127.0.0.1:1"},
                auth=("prometheus", PASSWORD),
            )
        async with httpx.AsyncClient(timeout=10, trust_env=False) as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.get(f"http://127.0.0.1:{server.port}/-/healthy")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic ")
    assert wrong.status_code == 401
    assert stranger.status_code == 401
    assert right.status_code == 200
    assert probe.status_code == 200
    assert "rdptrust_probe_success 0.0" in probe.text


async def test_prometheus_scrapes_over_tls_with_basic_auth(
    web_yml: Path,
    prometheus: Callable[[dict[str, Any]], Awaitable[str]],  # noqa: F811
) -> None:
    web = load_web_config(web_yml)
    async with Exporter(plain_config(), port=0, web=web) as server:
        job = {
            "job_name": "rdp",
            "scheme": "https",
            "metrics_path": "/probe",
            "params": {"target": ["127.0.0.1:1"]},
            "tls_config": {"ca_file": str(web_yml.parent / "exporter.crt")},
            "basic_auth": {"username": "prometheus", "password": PASSWORD},
            "static_configs": [{"targets": [f"127.0.0.1:{server.port}"]}],
        }
        wrong = {
            **job,
            "job_name": "wrong",
            "basic_auth": {"username": "prometheus", "password": "x"},
        }
        url = await prometheus(
            {
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                "scrape_configs": [job, wrong],
            }
        )
        async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
            success = await wait_for(
                client, url, 'rdptrust_probe_success{job="rdp"}', lambda r: len(r) == 1
            )
            up = await wait_for(client, url, "up", lambda r: len(r) == 2)
    assert float(success[0]["value"][1]) == 0  # the target refuses: the scrape itself worked
    ups = {item["metric"]["job"]: float(item["value"][1]) for item in up}
    assert ups == {"rdp": 1.0, "wrong": 0.0}


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ([], "expected a mapping"),
        ({"http_server_config": {}}, "'http_server_config' is not supported"),
        ({"tls_server_config": {"cert_file": "a"}}, "cert_file and key_file"),
        (
            {"tls_server_config": {"cert_file": "a", "key_file": "b", "cipher_suites": []}},
            "'cipher_suites' is not supported",
        ),
        (
            {"tls_server_config": {"cert_file": "a", "key_file": "b", "min_version": "SSL3"}},
            "min_version",
        ),
        (
            {
                "tls_server_config": {
                    "cert_file": "a",
                    "key_file": "b",
                    "client_auth_type": "RequireAndVerifyClientCert",
                }
            },
            "needs client_ca_file",
        ),
        ({"basic_auth_users": {"u": "plain-text"}}, "expected a bcrypt hash"),
    ],
)
def test_bad_web_configs_are_refused_with_the_key(document: object, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        parse_web_config(document, Path("."))


def test_unusable_tls_files_are_a_usage_error(tmp_path: Path) -> None:
    settings = parse_web_config(
        {"tls_server_config": {"cert_file": "missing.crt", "key_file": "missing.key"}}, tmp_path
    )
    assert settings.tls is not None
    with pytest.raises(UsageError, match="cannot load the TLS files"):
        settings.tls.context()
