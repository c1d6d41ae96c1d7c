"""The lasting fix end to end: an rdptrust CA issues the host certificate, the lab serves it,
and diagnose (with the CA trusted and its CRL published) says ok with no stall."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from fixtures.cli import no_pins
from fixtures.cli import run_rdptrust as rdptrust
from fixtures.lab import LabFactory


async def test_issued_certificate_diagnoses_ok(lab_factory: LabFactory, tmp_path: Path) -> None:
    # Given a CRL publisher on loopback (serves the CA's crl.der)
    ca_dir = tmp_path / "ca"
    hits: list[str] = []

    async def publish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        hits.append(request.split(b" ")[1].decode())
        body = (ca_dir / "crl.der").read_bytes()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(publish, "127.0.0.1", 0)
    crl_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/rdp.crl"
    try:
        # When the admin runs the lasting fix
        code, _, err = await rdptrust("ca", "init", "--dir", str(ca_dir), "--crl-url", crl_url)
        assert code == 0, err
        code, out, err = await rdptrust(
            "ca",
            "issue",
            "127.0.0.1",
            "--dir",
            str(ca_dir),
            "--out",
            str(tmp_path / "host"),
            "--json",
        )
        assert code == 0, err
        files = json.loads(out)["files"]
        code, _, err = await rdptrust("ca", "crl", "--dir", str(ca_dir))
        assert code == 0, err
        lab = await lab_factory(
            cert_file=Path(files["cert_pem"]),
            key_file=Path(files["key_pem"]),
            root_list="blackhole",
            require="HYBRID",
        )
        code, out, err = await rdptrust(
            "diagnose",
            str(lab.target),
            "--json",
            "--fetch-timeout",
            "2",
            "--ca-file",
            str(ca_dir / "ca.pem"),
            "--no-system-trust",
            "--root-list-url",
            lab.root_list_url,
            # the disallowed-list sync runs for trusted chains too and has its own switch
            # (WINDOWS.md §2): the CA-issued certificate does not remove it
            "--disallowed-update",
            "off",
            "--known-hosts",
            str(no_pins(tmp_path / "k.json")),
        )
    finally:
        server.close()
        await server.wait_closed()
    # Then the client trusts the chain, checks the CRL, and does not wait
    doc = json.loads(out)
    assert code == 0, (doc["problems"], err)
    assert doc["verdict"] == "ok"
    assert doc["predicted_stall_s"] < 1
    assert doc["trust"]["trusted"] is True
    (crl,) = [r for r in doc["retrievals"] if r["purpose"] == "crl"]
    assert crl["outcome"] == "ok"
    assert crl["revocation"] == "good"
    assert hits == ["/rdp.crl"]
    # the black-holed root list is not even asked for: the root is trusted
    assert not [r for r in doc["retrievals"] if r["purpose"] == "root_list"]
