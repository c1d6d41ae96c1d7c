"""Fixtures for the monitoring tests: lab RDP endpoints serving chosen certificates."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from fixtures.lab import LabFactory
from rdptrust.lab.certs import HostCredentials, LabCa, make_host_credentials
from rdptrust.lab.runner import Lab


@pytest.fixture
def rdp_host(lab_factory: LabFactory) -> Callable[[HostCredentials], Awaitable[Lab]]:
    """Factory: ``await rdp_host(credentials)`` starts a lab RDP endpoint serving them.

    The host requires NLA (CredSSP), as a default Windows host does. The labs stop at
    teardown (``lab_factory``). ``lab.set_credentials`` and
    ``lab.regenerate_certificate`` change what a lab serves.
    """

    async def start(credentials: HostCredentials) -> Lab:
        # NLA required, as on a default Windows host: no security finding of its own
        lab = await lab_factory(require="HYBRID")
        lab.set_credentials(credentials)
        return lab

    return start


@pytest.fixture(scope="session")
def lab_ca() -> LabCa:
    return LabCa.generate()


@pytest.fixture(scope="session")
def ca_credentials(lab_ca: LabCa) -> HostCredentials:
    return make_host_credentials("ca", ca=lab_ca)


@pytest.fixture(scope="session")
def expired_credentials(lab_ca: LabCa) -> HostCredentials:
    return make_host_credentials("expired", ca=lab_ca)


@pytest.fixture
def ca_file(lab_ca: LabCa, tmp_path: Path) -> Path:
    return lab_ca.write_root_pem(tmp_path / "lab-root.pem")


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port that refuses connections: bound, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])
