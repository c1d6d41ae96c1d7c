"""The sans-I/O CAPI2 reader: event XML to values, EVTX headers, and chain builds."""

from __future__ import annotations

import datetime as dt
import struct
import zlib

import pytest

from fixtures.capi2 import ACCUMULATIVE, PER_URL, Capi2Writer, Fetch
from fixtures.vectors import VECTORS
from rdptrust.errors import DataError
from rdptrust.model.capi2 import RetrievalSource, result_name
from rdptrust.model.retrieval import Purpose
from rdptrust.model.windows import RevocationRegime, WindowsSettings
from rdptrust.pki.record import apply_settled, settled_settings
from rdptrust.protocol.capi2 import (
    decode_xml,
    evtx_chunk_count,
    evtx_chunk_problem,
    evtx_header_problem,
    parse_duration,
    parse_events,
    parse_time,
)
from rdptrust.protocol.capi2_builds import chain_builds, purpose_of, select, stall_waits

START = dt.datetime(2026, 3, 2, 8, 0, 0, tzinfo=dt.UTC)
SAMPLE = VECTORS / "capi2" / "windows7-capi2-operational.evtx"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT9.976S", 9.976), ("PT15S", 15.0), ("PT1M", 60.0), ("PT1M2.5S", 62.5), ("P1DT1H", 90000.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "15", "PTxS", "PT-1S"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(DataError):
        parse_duration(text)


def test_times_with_seven_fraction_digits_and_offsets() -> None:
    # wevtutil writes seven digits (100 ns ticks); the EVTX library six
    assert parse_time("2017-05-19T02:02:36.0468750Z") == dt.datetime(
        2017, 5, 19, 2, 2, 36, 46875, tzinfo=dt.UTC
    )
    assert parse_time("2017-05-19T02:02:36Z").microsecond == 0
    assert parse_time("2017-05-19T04:02:36+02:00") == dt.datetime(
        2017, 5, 19, 2, 2, 36, tzinfo=dt.UTC
    )
    for bad in ("", "yesterday", "2017-13-40T99:99:99Z"):
        with pytest.raises(DataError):
            parse_time(bad)


def test_decoding_with_and_without_byte_order_marks() -> None:
    text = "<Event>é</Event>"
    for data in (
        text.encode("utf-8"),
        b"\xef\xbb\xbf" + text.encode("utf-8"),
        text.encode("utf-16"),
        text.encode("utf-16-le"),
        text.encode("utf-16-be"),
    ):
        assert decode_xml(data) == text
    with pytest.raises(DataError):
        decode_xml(b"<Event>\xff\xfe\xfd")


def test_the_evtx_header_check() -> None:
    head = SAMPLE.read_bytes()[:4096]
    size = SAMPLE.stat().st_size
    assert evtx_header_problem(head, size) is None
    assert "truncated" in (evtx_header_problem(head, 4096 + 65536) or "")
    assert "signature" in (evtx_header_problem(b"MZ" + head[2:], size) or "")
    assert "incomplete" in (evtx_header_problem(head[:100], size) or "")
    damaged = head[:42] + struct.pack("<H", 99) + head[44:]
    assert "checksum" in (evtx_header_problem(damaged, size) or "")
    # the same chunk count with a checksum that matches: the size decides
    fixed = damaged[:124] + struct.pack("<I", zlib.crc32(damaged[:120])) + damaged[128:]
    assert "99 chunks" in (evtx_header_problem(fixed, size) or "")


def test_the_evtx_chunk_check() -> None:
    data = SAMPLE.read_bytes()
    count = evtx_chunk_count(data[:4096])
    chunks = [data[4096 + i * 65536 : 4096 + (i + 1) * 65536] for i in range(count)]
    # Every chunk of a real log exported by Windows passes
    assert count == 13
    assert [evtx_chunk_problem(c, i) for i, c in enumerate(chunks)] == [None] * count
    chunk = chunks[1]

    def changed(at: int, value: bytes) -> bytes:
        return chunk[:at] + value + chunk[at + len(value) :]

    records = changed(600, bytes([chunk[600] ^ 0xFF]))
    assert evtx_chunk_problem(records, 1) == (
        "damaged: the event records checksum of chunk 2 (at byte 69632) does not match"
    )
    # a byte past the records' end (free space) is in neither checksum
    free = struct.unpack_from("<I", chunk, 48)[0]
    assert evtx_chunk_problem(changed(free + 10, b"\x01"), 1) is None
    assert "header checksum" in (evtx_chunk_problem(changed(8, b"\xff"), 1) or "")
    assert "signature" in (evtx_chunk_problem(changed(0, b"ElfFile"), 1) or "")
    assert "incomplete" in (evtx_chunk_problem(chunk[:1000], 1) or "")
    # a free-space offset out of the chunk, its header checksum made to match
    bad = changed(48, struct.pack("<I", 70000))
    bad = bad[:124] + struct.pack("<I", zlib.crc32(bad[:120] + bad[128:512])) + bad[128:]
    assert "outside the chunk" in (evtx_chunk_problem(bad, 1) or "")


def test_entities_are_refused_before_parsing() -> None:
    bomb = '<!DOCTYPE Event [<!ENTITY a "x"><!ENTITY b "&a;&a;">]><Event>&b;</Event>'
    with pytest.raises(DataError, match="document type"):
        parse_events([bomb])
    with pytest.raises(DataError, match="well-formed"):
        parse_events(["<Event><System></Event>"])


def _log(*builds: dict[str, object]) -> Capi2Writer:
    writer = Capi2Writer()
    for options in builds:
        writer.chain_build(start=START, subject="rdp01", sha1="ab" * 20, **options)  # type: ignore[arg-type]
    return writer


def test_events_of_a_build_become_one_chain_build_with_its_retrievals() -> None:
    writer = _log(
        {
            "flags": ACCUMULATIVE,
            "trust_errors": ("CERT_TRUST_REVOCATION_STATUS_UNKNOWN",),
            "fetches": [
                Fetch("http://pki.test/ocsp", 10.0, 10.0, "CONTEXT_OID_OCSP_RESP", "80072EE2"),
                Fetch("http://pki.test/i.crl", 0.2, None, cache=True, result="80092004"),
                Fetch("http://pki.test/i.crl", 5.0, 5.0, result="80072EE2"),
            ],
        },
        {"process": "svchost.exe", "flags": ()},
    )
    parsed = parse_events([writer.xml()])
    assert len(parsed.events) == 10
    log = chain_builds(parsed.events)
    assert [b.process for b in log.chain_builds] == ["mstsc.exe", "svchost.exe"]
    first = log.chain_builds[0]
    assert first.revocation_timeouts == RevocationRegime.ACCUMULATIVE
    assert log.chain_builds[1].revocation_timeouts == RevocationRegime.PER_URL
    assert first.elapsed_ms == 15201.0
    assert [r.source for r in first.retrievals] == [
        RetrievalSource.NETWORK,
        RetrievalSource.CACHE,
        RetrievalSource.NETWORK,
    ]
    assert [purpose_of(r) for r in first.retrievals] == [Purpose.OCSP, Purpose.CRL, Purpose.CRL]
    assert first.retrievals[1].result_name == "CRYPT_E_NOT_FOUND"
    waits = stall_waits(log.chain_builds)
    assert [w.seconds for w in waits] == [10.0, 5.0, 0.2]  # the failed cache miss counts too
    assert select(log, process="MSTSC.EXE") == (first,)
    assert select(log, sha1="AB:" * 19 + "AB") == log.chain_builds
    assert select(log, sha1="cd" * 20) == ()


def test_other_channels_are_counted_not_read() -> None:
    text = _log({}).xml().replace("Microsoft-Windows-CAPI2", "Microsoft-Windows-Sysmon")
    parsed = parse_events([text])
    assert parsed.events == []
    assert parsed.others == {"Microsoft-Windows-Sysmon/Operational": 2}


def test_the_record_settles_the_regime_only_when_builds_agree() -> None:
    accumulative = chain_builds(
        parse_events([_log({"flags": ACCUMULATIVE}, {"flags": ACCUMULATIVE}).xml()]).events
    ).chain_builds
    (setting,) = settled_settings(accumulative)
    assert (setting.name, setting.value) == ("revocation_timeouts", "accumulative")
    settings = apply_settled(WindowsSettings(), [setting])
    assert settings.revocation_timeouts == RevocationRegime.ACCUMULATIVE
    mixed = chain_builds(
        parse_events([_log({"flags": ACCUMULATIVE}, {"flags": PER_URL}).xml()]).events
    ).chain_builds
    assert settled_settings(mixed) == ()
    # no revocation check asked: nothing said about the regime
    none = chain_builds(parse_events([_log({"flags": ()}).xml()]).events).chain_builds
    assert settled_settings(none) == ()


def test_result_names() -> None:
    assert result_name("0x80072EE2") == "ERROR_INTERNET_TIMEOUT"
    assert result_name("0x80092013") == "CRYPT_E_REVOCATION_OFFLINE"
    assert result_name("0x800B0109") == "CERT_E_UNTRUSTEDROOT"
    assert result_name("0x80092012") == "CRYPT_E_NO_REVOCATION_CHECK"
    assert result_name("0x80072EFD") == "ERROR_INTERNET_CANNOT_CONNECT"
    assert result_name("0x80072EE7") == "ERROR_INTERNET_NAME_NOT_RESOLVED"
    assert result_name("0x800B010F") == "CERT_E_CN_NO_MATCH"
    assert result_name("0x12345678") is None


def test_rdp_chain_builds_are_mstsc_with_or_without_a_folder() -> None:
    writer = _log({"process": "C:\\Windows\\System32\\MSTSC.EXE"}, {"process": "notmstsc.exe"})
    log = chain_builds(parse_events([writer.xml()]).events)
    assert [b.rdp for b in log.chain_builds] == [True, False]
