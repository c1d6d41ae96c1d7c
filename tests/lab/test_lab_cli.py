"""``rdptrust lab`` as a subprocess: the first line is JSON, it serves, SIGTERM ends it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.net.probe import probe_host
from rdptrust.protocol.x224 import ConnectionRequest, NegotiationRequest, parse_connection_confirm

COMMAND = [sys.executable, "-m", "rdptrust.cli.main", "lab"]


def _first_line(proc: subprocess.Popen[str], timeout: float = 20) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no line from rdptrust lab within {timeout} s"
    return proc.stdout.readline()


def _stop(proc: subprocess.Popen[str], sig: int) -> tuple[int, float]:
    start = time.monotonic()
    proc.send_signal(sig)
    try:
        code = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    return code, time.monotonic() - start


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_first_line_json_then_serves_until_signal(sig: int) -> None:
    proc = subprocess.Popen(
        [*COMMAND, "--protocols", "RDP,SSL", "--require", "SSL", "--crl", "delay:2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info: dict[str, Any] = json.loads(_first_line(proc))
        assert info["schema"] == "rdptrust.lab/1"
        assert set(info) >= {"rdp", "pki_url", "root_list_url", "ca_cert", "certificate"}
        assert info["ca_cert"] is None
        assert len(info["certificate"]["sha256"]) == 64
        assert info["pki_modes"]["crl"] == "delay:2"
        host, _, port = info["rdp"][0].rpartition(":")
        assert host == "127.0.0.1"
        assert info["root_list_url"].startswith(info["pki_url"])
        # It serves: an RDP-only request is refused because TLS is required.
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(
                ConnectionRequest(negotiation=NegotiationRequest(SecurityProtocol.RDP)).to_bytes()
            )
            confirm, _ = parse_connection_confirm(sock.recv(4096)) or pytest.fail("short")
        assert confirm.negotiation is not None
        assert confirm.negotiation.to_bytes()[0] == 0x03  # RDP_NEG_FAILURE
        code, elapsed = _stop(proc, sig)
        assert code == 0
        assert elapsed < 5
        assert proc.stderr is not None
        assert proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def _lab(*args: str) -> Iterator[dict[str, Any]]:
    """A running ``rdptrust lab`` with *args*: its JSON line; it must stop with exit 0."""
    proc = subprocess.Popen(
        [*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        yield json.loads(_first_line(proc))
        code, _ = _stop(proc, signal.SIGTERM)
        assert code == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_distinct_certs_announces_each_endpoint_fingerprint() -> None:
    with _lab("--count", "4", "--distinct-certs") as info:
        assert len(info["rdp"]) == 4
        assert len(set(info["endpoint_sha256"])) == 4
        assert info["endpoint_sha256"][0] == info["certificate"]["sha256"]


def test_legacy_tls_mode_serves_a_host_the_probe_completes_with() -> None:
    with _lab("--tls-mode", "legacy") as info:
        host, port = info["rdp"][0].rsplit(":", 1)
        result = asyncio.run(
            probe_host(Target(host, int(port)), timeout=5, enumerate_tls_versions=False)
        )
        assert result.tls is not None
        assert (result.tls.version, result.tls.secure_renegotiation) == ("TLSv1.0", False)
        # and its first line says the range it serves, TLS 1.0 only
        assert info["tls_range"] == ["TLSv1.0", "TLSv1.0"]


def test_ca_kind_names_the_ca_certificate() -> None:
    with _lab("--cert", "ca", "--count", "2") as info:
        assert len(info["rdp"]) == 2
        with open(info["ca_cert"], encoding="ascii") as handle:
            assert handle.read().startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--protocols", "SSL", "--require", "HYBRID"], "not among the offered"),
        (["--root-list", "sometimes"], "unknown responder mode"),
        (["--protocols", "SSL,QUIC"], "unknown protocol"),
        (["--cert-file", "/nonexistent.pem"], "together"),
        (["--ntlm-version", "ten"], "not a version"),
        (["--hostile", "rude"], "rude"),
        (["--distinct-certs", "--cert", "expired"], "distinct certificates"),
        (["--tls-mode", "stapled"], "needs the lab CA"),
        (["--tls-mode", "legacy", "--count", "2", "--distinct-certs"], "one certificate"),
        (["--tls-mode", "ssl3"], "ssl3"),
        (["--tls-mode", "legacy", "--tls-min", "TLSv1.3"], "TLS 1.0 only"),
    ],
)
def test_usage_errors_exit_64_with_one_line(args: list[str], words: str) -> None:
    done = subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 64
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("rdptrust: error:")
    assert words in lines[0]


def test_help_has_examples() -> None:
    done = subprocess.run(
        [*COMMAND, "--help"], capture_output=True, text=True, timeout=30, check=True
    )
    for option in ("--hostile", "--require", "--no-negotiation", "--ntlm-version", "Examples"):
        assert option in done.stdout


def test_ldap_lab_needs_the_lab_ca() -> None:
    from rdptrust.errors import UsageError
    from rdptrust.lab.certs import CertKind
    from rdptrust.lab.ldap import LdapMode
    from rdptrust.lab.runner import LabConfig

    with pytest.raises(UsageError, match="LDAP CRL and AIA URLs need the lab CA"):
        LabConfig(ldap=LdapMode.OK)
    assert LabConfig(cert=CertKind.CA, ldap=LdapMode.BLACKHOLE).ldap is LdapMode.BLACKHOLE
