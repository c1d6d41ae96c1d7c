"""Coverage-guided fuzzing of every parser that reads bytes from outside (atheris).

Run:  .venv/bin/pip install atheris && .venv/bin/python fuzz/fuzz_parsers.py -max_total_time=60

The first input byte picks the parser; the rest is its input. Only the documented
errors may come out (RemoteProtocolError for wire formats, PkiError for certificates);
anything else is a finding and atheris stops with the input that caused it. CRL and
OCSP answers go through rdptrust.pki.revocation, which must return a verdict (never
raise) and may say REVOKED only for the serial the lab CA revoked.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris

with atheris.instrument_imports():
    from rdptrust.errors import PkiError, RemoteProtocolError
    from rdptrust.fix.registry_pol import parse_registry_pol
    from rdptrust.model.retrieval import RevocationStatus
    from rdptrust.pki.facts import certificate_facts, load_certificate, load_certificates
    from rdptrust.pki.revocation import check_crl, check_ocsp
    from rdptrust.protocol.gcc import (
        parse_client_connect_initial,
        parse_server_certificate,
        parse_server_connect_response,
        parse_user_data_blocks,
    )
    from rdptrust.protocol.mcs import (
        parse_connect_initial,
        parse_connect_response,
        parse_disconnect_provider_ultimatum,
    )
    from rdptrust.protocol.tpkt import parse_tpkt
    from rdptrust.protocol.x224 import (
        parse_connection_confirm,
        parse_connection_request,
        parse_data_tpdu,
    )


def _facts(data: bytes) -> object:
    return certificate_facts(load_certificate(data))


def _bundle(data: bytes) -> object:
    return [certificate_facts(cert) for cert in load_certificates(data)]


def _revocation_parsers() -> list[Callable[[bytes], object]]:
    """CRL and OCSP checks against a lab CA made once, for a host it issued."""
    from rdptrust.lab.certs import CertKind, LabCa, make_host_credentials

    ca = LabCa.generate()
    host = make_host_credentials(CertKind.CA, ca=ca)

    def crl(data: bytes) -> object:
        check = check_crl(data, host.leaf, ca.intermediate)
        if check.status == RevocationStatus.REVOKED:  # the host was never revoked
            raise AssertionError(f"a CRL nobody signed revoked the host: {data.hex()}")
        return check

    def ocsp(data: bytes) -> object:
        check = check_ocsp(data, host.leaf, ca.intermediate)
        if check.status == RevocationStatus.REVOKED:
            raise AssertionError(f"an OCSP answer nobody signed revoked the host: {data.hex()}")
        return check

    return [crl, ocsp]


PARSERS: list[Callable[[bytes], object]] = [
    parse_tpkt,
    parse_connection_request,
    parse_connection_confirm,
    parse_data_tpdu,
    parse_disconnect_provider_ultimatum,
    parse_connect_initial,
    parse_connect_response,
    parse_client_connect_initial,
    parse_server_connect_response,
    parse_server_certificate,
    parse_user_data_blocks,
    parse_registry_pol,
    _facts,
    _bundle,
    *_revocation_parsers(),
]

try:  # codecs that may not exist in every checkout
    from rdptrust.protocol import credssp, ntlm

    for module, names in (
        (ntlm, ("parse_challenge", "parse_negotiate", "parse_av_pairs")),
        (credssp, ("parse_ts_request", "parse_challenge_reply")),
    ):
        for name in names:
            if hasattr(module, name):
                PARSERS.append(getattr(module, name))
except ImportError:  # pragma: no cover
    pass


def test_one_input(data: bytes) -> None:
    if not data:
        return
    parser = PARSERS[data[0] % len(PARSERS)]
    try:
        parser(data[1:])
    except (RemoteProtocolError, PkiError):
        pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
