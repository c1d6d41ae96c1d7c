"""sslyze over RDP endpoints through its Python API, for benchmarks/netem.py.

    /work/main/.venv-sslyze/bin/python benchmarks/sslyze_run.py -i targets.txt \
        --mode certinfo --servers 100 --per-server 1 --out certs.json

Runs in sslyze's own virtual environment (it pins its own cryptography), so it imports
nothing from rdptrust. Every target is an IP:PORT (no name resolution) scanned with
``--starttls rdp``'s setting (X.224 negotiation before TLS). ``--mode certinfo`` runs the
certificate-information command only (the work ``rdptrust scan`` does: read the chain);
``--mode versions`` runs the SSL 2.0 to TLS 1.3 cipher-suite commands, sslyze's way of
telling which protocol versions a host accepts (paired with ``rdptrust scan
--enumerate``). ``--servers`` and ``--per-server`` are the Scanner's
``concurrent_server_scans_limit`` and ``per_server_concurrent_connections_limit``.
``--out`` writes each target's leaf certificate SHA-256 (certinfo) or accepted versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from sslyze import (
    ProtocolWithOpportunisticTlsEnum,
    ScanCommand,
    Scanner,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanStatusEnum,
)

VERSIONS = {
    "SSLv2": ScanCommand.SSL_2_0_CIPHER_SUITES,
    "SSLv3": ScanCommand.SSL_3_0_CIPHER_SUITES,
    "TLSv1.0": ScanCommand.TLS_1_0_CIPHER_SUITES,
    "TLSv1.1": ScanCommand.TLS_1_1_CIPHER_SUITES,
    "TLSv1.2": ScanCommand.TLS_1_2_CIPHER_SUITES,
    "TLSv1.3": ScanCommand.TLS_1_3_CIPHER_SUITES,
}


def request(target: str, commands: set[ScanCommand]) -> ServerScanRequest:
    host, _, port = target.rpartition(":")
    location = ServerNetworkLocation(hostname=host, port=int(port), ip_address=host)
    network = ServerNetworkConfiguration(
        tls_server_name_indication=host,
        tls_opportunistic_encryption=ProtocolWithOpportunisticTlsEnum.RDP,
    )
    return ServerScanRequest(
        server_location=location, network_configuration=network, scan_commands=commands
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--input", type=Path, required=True)
    parser.add_argument("--mode", choices=("certinfo", "versions"), default="certinfo")
    parser.add_argument("--servers", type=int, default=None, help="concurrent server scans")
    parser.add_argument("--per-server", type=int, default=None, help="connections per server")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    targets = [line.strip() for line in args.input.read_text().splitlines() if line.strip()]
    commands = {ScanCommand.CERTIFICATE_INFO} if args.mode == "certinfo" else set(VERSIONS.values())
    start = time.monotonic()
    scanner = Scanner(
        per_server_concurrent_connections_limit=args.per_server,
        concurrent_server_scans_limit=args.servers,
    )
    scanner.queue_scans([request(t, commands) for t in targets])
    out: dict[str, object] = {}
    for result in scanner.get_results():
        location = result.server_location
        target = f"{location.ip_address}:{location.port}"
        if result.scan_status != ServerScanStatusEnum.COMPLETED or result.scan_result is None:
            out[target] = f"error: {result.scan_status.name}"
            continue
        if args.mode == "certinfo":
            attempt = result.scan_result.certificate_info
            if attempt.result is None:
                out[target] = f"error: {attempt.status.name}"
                continue
            leaf = attempt.result.certificate_deployments[0].received_certificate_chain[0]
            out[target] = leaf.fingerprint(hashes.SHA256()).hex()
        else:
            accepted = []
            for name, command in VERSIONS.items():
                attempt = getattr(result.scan_result, command.value)
                if attempt.result is not None and attempt.result.accepted_cipher_suites:
                    accepted.append(name)
            out[target] = accepted
    wall = time.monotonic() - start
    if args.out:
        args.out.write_text(json.dumps(out))
    ok = sum(not (isinstance(v, str) and v.startswith("error")) for v in out.values())
    summary = {"targets": len(targets), "ok": ok, "wall_s": round(wall, 3)}
    print(json.dumps(summary), file=sys.stderr)


if __name__ == "__main__":
    main()
