"""Mutations of valid inputs for the parsers that had only vectors or random bytes.

Each test starts from a valid PDU/file (built here, so it round-trips), then overwrites,
inserts, deletes or truncates bytes. Only the documented error may come out:
RemoteProtocolError for wire formats and Registry.pol, PkiError for certificates and
trust files, StoreError for the pinned-host store; CRL and OCSP answers are judged by
rdptrust.pki.revocation, which must return a verdict and never flip GOOD and REVOKED.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdptrust.cli.main import main
from rdptrust.errors import PkiError, RemoteProtocolError, StoreError
from rdptrust.fix.policy import retrieval_timeouts, root_autoupdate
from rdptrust.fix.registry_pol import PolicyEntry, build_registry_pol, parse_registry_pol
from rdptrust.lab.certs import CertKind, HostCredentials, LabCa, make_host_credentials
from rdptrust.lab.pki import ocsp_answer
from rdptrust.model.retrieval import RevocationStatus
from rdptrust.model.target import Target
from rdptrust.pki.facts import certificate_facts, load_certificates
from rdptrust.pki.pinning import KnownHosts, pin_from_certificate
from rdptrust.pki.revocation import check_crl, check_ocsp, ocsp_request
from rdptrust.pki.trust import load_trust_anchors
from rdptrust.protocol import credssp, ntlm
from rdptrust.protocol.mcs import (
    ConnectResult,
    DisconnectProviderUltimatum,
    DisconnectReason,
    parse_connect_response,
    parse_disconnect_provider_ultimatum,
)
from rdptrust.protocol.tpkt import build_tpkt, parse_tpkt
from rdptrust.protocol.x224 import parse_data_tpdu

MUTATIONS = settings(max_examples=300, deadline=None)
SLOW_MUTATIONS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """*original* with a few bytes overwritten, inserted or deleted, maybe truncated."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["set", "insert", "delete", "flip"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            del data[at : at + draw(st.integers(1, 8))]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def _mutations_of(original: bytes) -> st.SearchStrategy[bytes]:
    return mutated(original)


# -- wire formats ---------------------------------------------------------------------


@given(st.binary(max_size=300))
def test_tpkt_round_trip(payload: bytes) -> None:
    packet = build_tpkt(payload)
    assert parse_tpkt(packet) == (payload, len(packet))
    assert parse_tpkt(packet + b"\x03\x00") == (payload, len(packet))
    for cut in range(len(packet)):
        assert parse_tpkt(packet[:cut]) is None


TPKT = build_tpkt(b"\x02\xf0\x80" + bytes(range(40)))


@MUTATIONS
@given(_mutations_of(TPKT))
def test_mutated_tpkt_and_data_tpdu(data: bytes) -> None:
    for parse in (parse_tpkt, parse_data_tpdu):
        try:
            result = parse(data)
        except RemoteProtocolError as exc:
            offset = exc.offset
            assert offset is None or 0 <= offset <= len(data)
            continue
        if result is not None:
            body, consumed = result
            assert 4 <= consumed <= len(data)
            assert len(body) < consumed


DPU = {reason: DisconnectProviderUltimatum(reason).to_bytes() for reason in DisconnectReason}


@MUTATIONS
@given(st.sampled_from(sorted(DPU)).flatmap(lambda reason: _mutations_of(DPU[reason])))
def test_mutated_disconnect_provider_ultimatum(data: bytes) -> None:
    # As the connection reads it: X.224 Data first, then the MCS PDU inside.
    with contextlib.suppress(RemoteProtocolError):
        framed = parse_data_tpdu(data)
        if framed is not None:
            pdu = parse_disconnect_provider_ultimatum(framed[0])
            assert 0 <= pdu.reason <= 7


def test_disconnect_provider_ultimatum_round_trip() -> None:
    for reason, data in DPU.items():
        framed = parse_data_tpdu(data)
        assert framed is not None
        assert parse_disconnect_provider_ultimatum(framed[0]).reason == reason


def _mcs_refusal() -> bytes:
    from rdptrust.protocol.gcc import ServerConnectResponse

    return ServerConnectResponse.refusal(ConnectResult.RT_UNSPECIFIED_FAILURE).to_bytes()


REFUSAL = _mcs_refusal()


@MUTATIONS
@given(_mutations_of(REFUSAL))
def test_mutated_mcs_connect_response(data: bytes) -> None:
    # The refusal is the shortest Connect-Response; MCS parses it without GCC.
    with contextlib.suppress(RemoteProtocolError):
        parse_data = parse_data_tpdu(data)
        if parse_data is not None:
            parse_connect_response(parse_data[0], base=7)


CHALLENGE = ntlm.ChallengeMessage(
    server_challenge=b"\x01\x02\x03\x04\x05\x06\x07\x08",
    target_name="LAB",
    target_info=ntlm.TargetInfo.from_names(
        netbios_computer_name="WIN-LAB01",
        netbios_domain_name="LAB",
        dns_computer_name="win-lab01.lab.test",
        dns_domain_name="lab.test",
        timestamp=133_000_000_000_000_000,
    ),
    version=ntlm.Version(10, 0, 20348),
).to_bytes()


@MUTATIONS
@given(_mutations_of(CHALLENGE))
def test_mutated_ntlm_challenge(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        message = ntlm.parse_challenge(data)
        assert len(message.server_challenge) == 8


REPLY = credssp.TSRequest(version=6, nego_tokens=(CHALLENGE,)).to_bytes()


@MUTATIONS
@given(_mutations_of(REPLY))
def test_mutated_credssp_challenge_reply(data: bytes) -> None:
    # A TSRequest carrying a CHALLENGE: both layers must refuse cleanly.
    with contextlib.suppress(RemoteProtocolError):
        credssp.parse_challenge_reply(data)


# -- certificates, trust files, CRL and OCSP -------------------------------------------


@pytest.fixture(scope="module")
def ca() -> LabCa:
    return LabCa.generate()


@pytest.fixture(scope="module")
def good_host(ca: LabCa) -> HostCredentials:
    return make_host_credentials(CertKind.CA, ca=ca)


@pytest.fixture(scope="module")
def revoked_host(ca: LabCa) -> HostCredentials:
    host = make_host_credentials(CertKind.CA, ca=ca)
    ca.revoke(host.leaf.serial_number, revoked_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    return host


DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM


@SLOW_MUTATIONS
@given(data=st.data())
def test_mutated_pem_bundle_raises_only_pki_error(
    data: st.DataObject, ca: LabCa, good_host: HostCredentials
) -> None:
    bundle = good_host.leaf.public_bytes(PEM) + ca.intermediate.public_bytes(PEM)
    blob = data.draw(_mutations_of(bundle))
    try:
        certificates = load_certificates(blob)
    except PkiError:
        return
    for cert in certificates:
        certificate_facts(cert)


@SLOW_MUTATIONS
@given(data=st.data())
def test_mutated_ca_file_raises_only_pki_error(
    data: st.DataObject, ca: LabCa, tmp_path: Path
) -> None:
    blob = data.draw(_mutations_of(ca.root.public_bytes(DER)))
    path = tmp_path / "ca.der"
    path.write_bytes(blob)
    with contextlib.suppress(PkiError):
        anchors = load_trust_anchors(system=False, ca_files=[path])
        assert anchors.certificates


@SLOW_MUTATIONS
@given(data=st.data())
def test_mutated_crl_never_flips_the_verdict(
    data: st.DataObject, ca: LabCa, good_host: HostCredentials, revoked_host: HostCredentials
) -> None:
    crl = ca.crl("intermediate").public_bytes(DER)
    assert check_crl(crl, good_host.leaf, ca.intermediate).status == RevocationStatus.GOOD
    assert check_crl(crl, revoked_host.leaf, ca.intermediate).status == RevocationStatus.REVOKED
    blob = data.draw(_mutations_of(crl))
    good = check_crl(blob, good_host.leaf, ca.intermediate)
    revoked = check_crl(blob, revoked_host.leaf, ca.intermediate)
    assert good.status != RevocationStatus.REVOKED
    assert revoked.status != RevocationStatus.GOOD


@SLOW_MUTATIONS
@given(data=st.data(), which=st.sampled_from(["good", "revoked"]))
def test_mutated_ocsp_never_flips_the_verdict(
    data: st.DataObject,
    which: str,
    ca: LabCa,
    good_host: HostCredentials,
    revoked_host: HostCredentials,
) -> None:
    host = good_host if which == "good" else revoked_host
    answer = ocsp_answer(ca, ocsp_request(host.leaf, ca.intermediate))
    expected = RevocationStatus.GOOD if which == "good" else RevocationStatus.REVOKED
    assert check_ocsp(answer, host.leaf, ca.intermediate).status == expected
    blob = data.draw(_mutations_of(answer))
    check = check_ocsp(blob, host.leaf, ca.intermediate)
    assert check.status in (expected, RevocationStatus.INVALID, RevocationStatus.UNKNOWN)
    if check.status != RevocationStatus.INVALID:
        # A verdict other than INVALID must come from a response that still verifies.
        assert check.status == expected


# -- files the user hands in -----------------------------------------------------------


PINNED_AT = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def known_hosts_bytes(
    good_host: HostCredentials, tmp_path_factory: pytest.TempPathFactory
) -> bytes:
    path = tmp_path_factory.mktemp("pins") / "known_hosts.json"
    store = KnownHosts(path)
    store.add(pin_from_certificate(Target("rdp01.lab.test", 3389), good_host.leaf, now=PINNED_AT))
    store.save()
    assert len(KnownHosts.load(path).pins()) == 1
    return path.read_bytes()


@SLOW_MUTATIONS
@given(data=st.data())
def test_mutated_known_hosts_raises_only_store_error(
    data: st.DataObject, known_hosts_bytes: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "known_hosts.json"
    path.write_bytes(data.draw(_mutations_of(known_hosts_bytes)))
    with contextlib.suppress(StoreError):
        KnownHosts.load(path)


POL = build_registry_pol(
    [
        *root_autoupdate(disable=True).entries,
        *retrieval_timeouts(3000, 20000).entries,
        PolicyEntry.string("Software\\Policies\\Lab", "Name", "lab"),
    ]
)


@MUTATIONS
@given(_mutations_of(POL))
def test_mutated_registry_pol_raises_only_remote_protocol_error(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        for entry in parse_registry_pol(data):
            entry.value  # noqa: B018 - decoding the value is part of reading


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        else:  # pragma: no cover - main always exits
            code = 0
    return code, out.getvalue(), err.getvalue()


@SLOW_MUTATIONS
@given(blob=_mutations_of(POL), as_json=st.booleans())
def test_policy_show_of_a_mutated_file_is_one_line_and_exit_64(
    blob: bytes, as_json: bool, tmp_path: Path
) -> None:
    path = tmp_path / "Registry.pol"
    path.write_bytes(blob)
    code, out, err = _cli("policy", "show", str(path), *(["--json"] if as_json else []))
    try:
        parse_registry_pol(blob)
    except RemoteProtocolError:
        assert code == 64, (code, err)
        assert len(err.splitlines()) == 1
        assert err.startswith("rdptrust: error: ")
        assert "internal error" not in err
    else:
        assert code == 0, err
        if as_json:
            json.loads(out)


# -- the CAPI2 log ----------------------------------------------------------------------


def _capi2_xml() -> bytes:
    from fixtures.capi2 import ACCUMULATIVE, Capi2Writer, Fetch

    writer = Capi2Writer()
    writer.chain_build(
        start=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
        subject="rdp01",
        sha1="ab" * 20,
        flags=ACCUMULATIVE,
        fetches=[Fetch("http://pki.test/r.crl", 10.0, 10.0, result="80072EE2")],
    )
    return writer.xml().encode("utf-16")


CAPI2_EVTX = Path(__file__).resolve().parents[1] / "vectors/capi2/windows7-capi2-operational.evtx"


def _two_chunks() -> bytes:
    """The real log's header and first two chunks, the header saying two chunks."""
    import struct
    import zlib

    data = bytearray(CAPI2_EVTX.read_bytes()[: 4096 + 2 * 65536])
    struct.pack_into("<H", data, 42, 2)
    struct.pack_into("<I", data, 124, zlib.crc32(bytes(data[:120])))
    return bytes(data)


@MUTATIONS
@given(_mutations_of(_capi2_xml()))
def test_mutated_capi2_xml(data: bytes) -> None:
    from rdptrust.errors import DataError
    from rdptrust.protocol.capi2 import decode_xml, parse_events
    from rdptrust.protocol.capi2_builds import chain_builds

    with contextlib.suppress(DataError):
        chain_builds(parse_events([decode_xml(data)]).events)


@SLOW_MUTATIONS
@given(data=_mutations_of(_two_chunks()))
def test_mutated_evtx(tmp_path: Path, data: bytes) -> None:
    from rdptrust.engine.capi2 import load_capi2
    from rdptrust.errors import DataError

    path = tmp_path / "capi2.evtx"
    path.write_bytes(data)
    with contextlib.suppress(DataError):
        load_capi2([path])
