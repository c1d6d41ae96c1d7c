"""Coverage-guided fuzzing of every parser that reads bytes from outside (atheris).

Run:  .venv/bin/pip install atheris && .venv/bin/python fuzz/fuzz_parsers.py -max_total_time=60
One parser only: RDPTRUST_FUZZ_PARSER=parse_tpkt .venv/bin/python fuzz/fuzz_parsers.py ...
(``--list`` prints the names.)

The first input byte picks the parser; the rest is its input. Only the documented
errors may come out (RemoteProtocolError for wire formats, PkiError for certificates);
anything else is a finding and atheris stops with the input that caused it. CRL and
OCSP answers go through rdptrust.pki.revocation, which must return a verdict (never
raise) and may say REVOKED only for the serial the lab CA revoked.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import atheris

with atheris.instrument_imports():
    from rdptrust.errors import PkiError, RemoteProtocolError
    from rdptrust.fix.registry_pol import parse_registry_pol
    from rdptrust.model.retrieval import RevocationStatus
    from rdptrust.pki.facts import certificate_facts, load_certificate, load_certificates
    from rdptrust.pki.revocation import check_crl, check_ocsp
    from rdptrust.protocol import credssp, ntlm
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


def certificate_facts_der(data: bytes) -> object:
    return certificate_facts(load_certificate(data))


def certificate_bundle(data: bytes) -> object:
    return [certificate_facts(cert) for cert in load_certificates(data)]


#: Valid inputs of some parsers (a CRL and an OCSP answer of the lab CA below, NTLM and
#: CredSSP messages): random bytes seldom parse, so a run of one of them starts from these.
SEEDS: dict[str, list[bytes]] = {}


def _revocation_parsers() -> list[Callable[[bytes], object]]:
    """CRL and OCSP checks against a lab CA made once, for a host it issued."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from rdptrust.lab.certs import CertKind, LabCa, make_host_credentials
    from rdptrust.lab.pki.content import ocsp_answer
    from rdptrust.pki.revocation import ocsp_request

    ca = LabCa.generate()
    host = make_host_credentials(CertKind.CA, ca=ca)
    SEEDS["check_crl_lab"] = [ca.crl("intermediate").public_bytes(Encoding.DER)]
    SEEDS["check_ocsp_lab"] = [ocsp_answer(ca, ocsp_request(host.leaf, ca.intermediate))]
    chain = (host.leaf, ca.intermediate, ca.root)
    SEEDS["certificate_facts_der"] = [c.public_bytes(Encoding.DER) for c in chain]
    SEEDS["certificate_bundle"] = [b"".join(c.public_bytes(Encoding.PEM) for c in chain)]

    def check_crl_lab(data: bytes) -> object:
        check = check_crl(data, host.leaf, ca.intermediate)
        if check.status == RevocationStatus.REVOKED:  # the host was never revoked
            raise AssertionError(f"a CRL nobody signed revoked the host: {data.hex()}")
        return check

    def check_ocsp_lab(data: bytes) -> object:
        check = check_ocsp(data, host.leaf, ca.intermediate)
        if check.status == RevocationStatus.REVOKED:
            raise AssertionError(f"an OCSP answer nobody signed revoked the host: {data.hex()}")
        return check

    return [check_crl_lab, check_ocsp_lab]


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
    certificate_facts_der,
    certificate_bundle,
    *_revocation_parsers(),
]

# (imported inside instrument_imports above: coverage guides these too)
for module, names in (
    (ntlm, ("parse_challenge", "parse_negotiate", "parse_av_pairs")),
    (credssp, ("parse_ts_request", "parse_challenge_reply")),
):
    for name in names:
        PARSERS.append(getattr(module, name))


def _vector(name: str) -> bytes:
    """A hex vector of tests/vectors (``#`` lines are comments)."""
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "vectors", name)
    with open(path, encoding="ascii") as handle:
        return bytes.fromhex(" ".join(x for x in handle if not x.startswith("#")))


def _protocol_seeds() -> None:
    """Seeds for the NTLM and CredSSP codecs: the MS-NLMP CHALLENGE vectors, a NEGOTIATE,
    their TargetInfo, and TSRequests carrying them (a signature such as ``NTLMSSP\\0`` is
    slow to find from random bytes)."""
    challenges = [_vector(f"ntlm/challenge_{v}_spec.hex") for v in ("ntlmv1", "ntlmv2")]
    SEEDS["parse_challenge"] = challenges
    SEEDS["parse_negotiate"] = [ntlm.NegotiateMessage(version=credssp.CLIENT_VERSION).to_bytes()]
    infos = [ntlm.parse_challenge(c).target_info for c in challenges]
    SEEDS["parse_av_pairs"] = [i.to_bytes() for i in infos if i is not None]
    replies = [credssp.TSRequest(nego_tokens=(c,)).to_bytes() for c in challenges]
    SEEDS["parse_challenge_reply"] = replies
    SEEDS["parse_ts_request"] = [
        _vector("credssp/tsrequest_nmap_negotiate.hex"),
        credssp.negotiate_request(),
        *replies,
    ]


_protocol_seeds()


_CHOSEN = os.environ.get("RDPTRUST_FUZZ_PARSER")
_ONLY = [p for p in PARSERS if p.__name__ == _CHOSEN]
if _CHOSEN and not _ONLY:
    sys.exit(f"no parser {_CHOSEN!r}: see --list")


def test_one_input(data: bytes) -> None:
    if _ONLY:  # one parser: every byte is its input
        parser, data = _ONLY[0], b"\x00" + data
    elif not data:
        return
    else:
        parser = PARSERS[data[0] % len(PARSERS)]
    try:
        parser(data[1:])
    except (RemoteProtocolError, PkiError):
        pass


def _seed_directory() -> str | None:
    """A corpus folder holding the chosen parser's seeds (None: it has none)."""
    seeds = SEEDS.get(_CHOSEN or "")
    if not seeds:
        return None
    import tempfile

    folder = tempfile.mkdtemp(prefix=f"rdptrust-fuzz-{_CHOSEN}-")
    for number, seed in enumerate(seeds):
        with open(os.path.join(folder, f"seed-{number}"), "wb") as handle:
            handle.write(seed)
    return folder


def main() -> None:
    if "--list" in sys.argv:
        print("\n".join(p.__name__ for p in PARSERS))
        return
    folder = _seed_directory()
    if folder is not None:  # libFuzzer reads, and adds to, the corpus folders it is given
        sys.argv.append(folder)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
