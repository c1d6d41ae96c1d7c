"""Reading CAPI2 Operational logs from files: the real Windows 7 log, as EVTX and as XML,
and every kind of bad input."""

from __future__ import annotations

import datetime as dt
import re
import struct
import zlib
from pathlib import Path

import pytest
from evtx import PyEvtxParser

from fixtures.capi2 import Capi2Writer, Fetch
from fixtures.vectors import VECTORS
from rdptrust.engine.capi2 import load_capi2
from rdptrust.errors import DataError
from rdptrust.model.capi2 import RetrievalSource
from rdptrust.model.windows import RevocationRegime
from rdptrust.report.capi2 import capi2_document

SAMPLE = VECTORS / "capi2" / "windows7-capi2-operational.evtx"


def _sample_xml() -> list[str]:
    """The sample's records as the EVTX library renders them (one XML document each)."""
    return [str(r["data"]) for r in PyEvtxParser(str(SAMPLE)).records()]


def _raw_counts() -> dict[str, int]:
    """Counts read from the raw record XML with regular expressions, not the parser."""
    ids = [re.search(r"<EventID>(\d+)</EventID>", x) for x in _sample_xml()]
    found = [m.group(1) for m in ids if m]
    return {eid: found.count(eid) for eid in set(found)}


def test_the_sample_holds_42_chain_builds_and_12_network_retrievals() -> None:
    raw = _raw_counts()
    log = load_capi2([SAMPLE])
    assert log.events == sum(raw.values()) == 340
    assert len(log.chain_builds) == raw["10"] == raw["11"] == 42
    network = [r for b in log.chain_builds for r in b.retrievals if r.source == "network"]
    cache = [r for b in log.chain_builds for r in b.retrievals if r.source == "cache"]
    assert len(network) == raw["53"] == 12
    assert len(cache) == raw["51"] == 15
    assert log.processes == {"Setup.exe": 42}
    assert not any(b.rdp for b in log.chain_builds)


def test_network_retrievals_are_as_the_log_has_them() -> None:
    # The URL, Timeout and Result of every event 53, read with regular expressions.
    expected = []
    for text in _sample_xml():
        if "<EventID>53</EventID>" in text:
            url = re.search(r"<URL[^>]*>([^<]+)</URL>", text)
            timeout = re.search(r"<Timeout>PT([\d.]+)S</Timeout>", text)
            result = re.search(r'<Result value="([0-9A-Fa-f]+)"', text)
            assert url
            assert timeout
            assert result
            expected.append((url.group(1), float(timeout.group(1)), int(result.group(1), 16)))
    log = load_capi2([SAMPLE])
    got = [
        (r.url, r.timeout_s, int(r.result, 16))
        for b in sorted(log.chain_builds, key=lambda b: b.started)
        for r in b.retrievals
        if r.source == RetrievalSource.NETWORK
    ]
    assert sorted(got) == sorted(expected)
    assert ("http://crl.microsoft.com/pki/crl/products/CSPCA.crl", 9.976, 0) in got
    first = next(r for b in log.chain_builds for r in b.retrievals if r.timeout_s == 9.976)
    assert first.object == "CONTEXT_OID_CRL"
    assert first.proxy_action == "NoProxy"
    assert first.result == "0x00000000"
    assert first.result_name == "S_OK"
    later = [r for b in log.chain_builds for r in b.retrievals if r.proxy_action]
    assert "Call_WinHttpGetProxyForUrl, NoProxy" in {r.proxy_action for r in later}


def test_chain_builds_carry_certificate_flags_regime_and_errors() -> None:
    log = load_capi2([SAMPLE])
    first = log.chain_builds[0]
    assert first.task_id == "{1CB1FE4B-D685-48FC-A3FA-42893E4C1717}"
    assert first.process == "Setup.exe"
    assert first.subject == "Microsoft Corporation"
    assert first.sha1 == "9617094a1cfb59ae7c1f7dfdb6739e4e7c40508f"
    assert first.flags == (
        "CERT_CHAIN_CACHE_END_CERT",
        "CERT_CHAIN_REVOCATION_CHECK_CHAIN_EXCLUDE_ROOT",
        "CERT_CHAIN_REVOCATION_ACCUMULATIVE_TIMEOUT",
    )
    assert first.revocation_timeouts == RevocationRegime.ACCUMULATIVE
    assert first.trust_errors == ("CERT_TRUST_REVOCATION_STATUS_UNKNOWN",)
    assert first.started == dt.datetime(2017, 5, 19, 2, 2, 36, tzinfo=dt.UTC)
    regimes = [b.revocation_timeouts for b in log.chain_builds]
    assert regimes.count(RevocationRegime.ACCUMULATIVE) == 28
    assert regimes.count(RevocationRegime.PER_URL) == 14  # flags 0: no revocation check
    # one WinVerifyTrust task holds two chain builds, one after the other
    assert sum(b.task_id == first.task_id for b in log.chain_builds) == 2


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
@pytest.mark.parametrize("root", [True, False])
def test_the_same_events_as_xml_give_the_same_document(
    tmp_path: Path, encoding: str, root: bool
) -> None:
    # Given the sample's events exported as XML (the library's rendering of each record)
    body = "\n".join(_sample_xml())
    text = f"<Events>{body}</Events>" if root else body
    path = tmp_path / "capi2.xml"
    path.write_bytes(text.encode(encoding))  # utf-16 writes a byte-order mark
    # Then the document is the same as from the EVTX file
    from_evtx = load_capi2([SAMPLE])
    from_xml = load_capi2([path])
    assert capi2_document(from_xml, from_xml.chain_builds) == capi2_document(
        from_evtx, from_evtx.chain_builds
    )


def test_overlapping_logs_count_each_event_once(tmp_path: Path) -> None:
    # Given the sample twice, and its first 200 and last 200 records exported as XML
    # (two exports of one machine that overlap by 60 events)
    records = _sample_xml()
    first, last = tmp_path / "monday.xml", tmp_path / "friday.xml"
    first.write_text("\n".join(records[:200]), encoding="utf-8")
    last.write_text("\n".join(records[-200:]), encoding="utf-8")
    alone = load_capi2([SAMPLE])
    # When they are read together
    twice = load_capi2([SAMPLE, SAMPLE])
    overlapping = load_capi2([first, last])
    # Then every event counts once, the repeats are counted apart, and the builds are the same
    assert (twice.events, twice.duplicates) == (340, 340)
    assert (overlapping.events, overlapping.duplicates) == (340, 60)
    document = capi2_document(alone, alone.chain_builds)
    for log in (twice, overlapping):
        again = capi2_document(log, log.chain_builds)
        assert again["duplicate_events"] == log.duplicates
        assert {**again, "duplicate_events": 0} == document
    # And a file that holds only repeats is read, not refused as holding no CAPI2 events
    assert load_capi2([SAMPLE, first]).duplicates == 200


def test_one_event_alone_is_read(tmp_path: Path) -> None:
    writer = Capi2Writer()
    writer.chain_build(
        start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        subject="rdp01",
        sha1="ab" * 20,
        fetches=[Fetch("http://pki.test/r.crl", 10.0, 10.0, result="80072EE2")],
    )
    path = tmp_path / "one.xml"
    path.write_text(writer.events[-1], encoding="utf-8")
    log = load_capi2([path])
    (build,) = log.chain_builds
    assert build.elapsed_ms is None  # no start event: a stop alone
    assert build.retrievals == ()
    # the whole build, wevtutil style (no root element)
    path.write_text(writer.xml(root=False), encoding="utf-8")
    (build,) = load_capi2([path]).chain_builds
    (fetch,) = build.retrievals
    assert fetch.result == "0x80072EE2"
    assert fetch.result_name == "ERROR_INTERNET_TIMEOUT"
    assert fetch.elapsed_ms == 10000.0
    assert build.rdp


def _other_channel(tmp_path: Path) -> Path:
    text = "\n".join(_sample_xml()[:20])
    text = text.replace(
        "Microsoft-Windows-CAPI2/Operational", "Microsoft-Windows-Sysmon/Operational"
    )
    text = text.replace('Name="Microsoft-Windows-CAPI2"', 'Name="Microsoft-Windows-Sysmon"')
    path = tmp_path / "sysmon.xml"
    path.write_text(text, encoding="utf-8")
    return path


def _overwritten(data: bytes, at: int, count: int) -> bytes:
    return data[:at] + b"A" * count + data[at + count :]


def _checksummed(data: bytes, at: int) -> bytes:
    """*data* with the CRC32s of the EVTX chunk at *at* recomputed (libevtx's layout)."""
    chunk = bytearray(data[at : at + 65536])
    free = struct.unpack_from("<I", chunk, 48)[0]
    struct.pack_into("<I", chunk, 52, zlib.crc32(chunk[512:free]))
    struct.pack_into("<I", chunk, 124, zlib.crc32(bytes(chunk[:120] + chunk[128:512])))
    return data[:at] + bytes(chunk) + data[at + 65536 :]


def test_bad_inputs_are_data_errors(tmp_path: Path) -> None:
    cases: dict[str, bytes] = {
        "random.evtx": bytes(range(256)) * 40,
        "truncated.evtx": SAMPLE.read_bytes()[:100_000],
        "header.evtx": SAMPLE.read_bytes()[:60],
        "empty.xml": b"",
        "events.xml": b"<Events></Events>",
        "broken.xml": b"<Event><System>",
        "bomb.xml": b'<!DOCTYPE x [<!ENTITY a "aaaa">]><Event>&a;</Event>',
        "damaged.evtx": SAMPLE.read_bytes()[:50] + b"\xff" + SAMPLE.read_bytes()[51:],
        # the second chunk's records overwritten: the header is sound, a record is not
        "chunk.evtx": _overwritten(SAMPLE.read_bytes(), 4096 + 65536 + 600, 3400),
        # the same with both of the chunk's checksums made to match: the records decide
        "records.evtx": _checksummed(
            _overwritten(SAMPLE.read_bytes(), 4096 + 65536 + 600, 3400), 4096 + 65536
        ),
    }
    messages = {}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DataError) as caught:
            load_capi2([path])
        messages[name] = str(caught.value)
    with pytest.raises(DataError) as caught:
        load_capi2([_other_channel(tmp_path)])
    assert "20 of Microsoft-Windows-Sysmon/Operational" in str(caught.value)
    assert "truncated" in messages["truncated.evtx"]
    assert "checksum" in messages["damaged.evtx"]
    assert "the event records checksum of chunk 2 " in messages["chunk.evtx"]
    assert "unreadable EVTX records" in messages["records.evtx"]
    assert "no Microsoft-Windows-CAPI2/Operational events" in messages["events.xml"]
    assert "document type" in messages["bomb.xml"]
    assert all("\n" not in m for m in messages.values())
