"""benchmarks/minimal_client.py, the ceiling of the speed benchmarks, against the built-in lab."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from fixtures.lab import LabFactory
from rdptrust.model.wire import SecurityProtocol
from rdptrust.net import connection
from rdptrust.protocol.x224 import ConnectionRequest, NegotiationRequest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "minimal_client.py"


@pytest.fixture(scope="module")
def client() -> ModuleType:
    spec = importlib.util.spec_from_file_location("minimal_client", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["minimal_client"] = module
    spec.loader.exec_module(module)
    return module


async def test_reads_each_endpoint_certificate(lab_factory: LabFactory, client: ModuleType) -> None:
    # Given three lab endpoints, each with a certificate of its own
    lab = await lab_factory(count=3, distinct_certs=True)
    targets = [str(t) for t in lab.targets]
    # When the minimal client reads them
    got = await client.scan(targets, concurrency=2, timeout=10.0)
    # Then it has each endpoint's leaf certificate
    assert got == dict(zip(targets, lab.endpoint_sha256, strict=True))
    assert len(set(got.values())) == 3


async def test_host_without_tls_is_an_error(lab_factory: LabFactory, client: ModuleType) -> None:
    lab = await lab_factory(protocols="RDP")
    target = str(lab.target)
    got = await client.scan([target], concurrency=1, timeout=10.0)
    # (it asked for TLS or CredSSP; the host answers as Windows does, SSL_NOT_ALLOWED_BY_SERVER)
    assert got == {target: "error: ConnectionError: the host refused TLS (RDP_NEG_FAILURE, code 2)"}


def test_client_hello_settings_are_rdptrust_ones(client: ModuleType) -> None:
    # the ceiling is only a ceiling if its handshake is the one rdptrust makes
    assert client.CLIENT_CIPHERS == connection.CLIENT_CIPHERS
    assert client.CLIENT_GROUPS == connection.CLIENT_GROUPS
    request = ConnectionRequest(
        negotiation=NegotiationRequest(SecurityProtocol.SSL | SecurityProtocol.HYBRID)
    )
    assert client.CONNECTION_REQUEST == request.to_bytes()
