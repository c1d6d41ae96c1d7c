"""Coverage-guided fuzzing of every parser that reads bytes from outside (atheris).

Run:  .venv/bin/pip install atheris && .venv/bin/python fuzz/fuzz_parsers.py -max_total_time=60

The first input byte picks the parser; the rest is its input. Only the documented
errors may come out (RemoteProtocolError for wire formats, PkiError for certificates);
anything else is a finding and atheris stops with the input that caused it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris

with atheris.instrument_imports():
    from rdptrust.errors import PkiError, RemoteProtocolError
    from rdptrust.fix.registry_pol import parse_registry_pol
    from rdptrust.pki.facts import certificate_facts, load_certificate
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
]

try:  # codecs that may not exist in every checkout
    from rdptrust.protocol import credssp, ntlm

    for module, names in (
        (ntlm, ("parse_challenge", "parse_negotiate")),
        (credssp, ("decode_ts_request",)),
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
