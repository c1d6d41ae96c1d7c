"""Sans-I/O reading of the CAPI2 Operational log: event XML to :class:`Capi2Event`.

Input is the XML Windows renders for each event (``wevtutil qe ... /f:xml``, Event
Viewer's "Save as XML", or an EVTX library's record XML): one or many ``<Event>``
elements, with or without a root element and XML declarations, in UTF-8 or UTF-16 with
a byte-order mark. The fields read are those of the Microsoft-Windows-CAPI2 event schema
(WINDOWS.md §8). A document type declaration is refused before parsing, so no entity
is ever expanded. :func:`evtx_header_problem` checks an ``.evtx`` file's header (libevtx
"Windows XML Event Log (EVTX) format": 4096-byte header, 64 KiB chunks, CRC32 of the
first 120 bytes) so a file cut short is told apart from a short log, and
:func:`evtx_chunk_problem` each chunk's two CRC32s (its header; its event records), so a
damaged chunk is not read as a log with fewer events.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

from rdptrust.errors import DataError
from rdptrust.model.capi2 import CAPI2_CHANNEL, CAPI2_PROVIDER, Capi2Event

EVTX_MAGIC = b"ElfFile\x00"
EVTX_HEADER_SIZE = 4096
EVTX_CHUNK_SIZE = 65536
#: Longest text accepted from one field (URLs, names): a log is input, not trusted.
MAX_FIELD = 8192

_DECLARATION = re.compile(r"<\?xml[^>]*\?>")
_DURATION = re.compile(
    r"P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


def evtx_header_problem(head: bytes, size: int) -> str | None:
    """What is wrong with an ``.evtx`` file of *size* bytes starting with *head* (at
    least its first 4096 bytes), or None when its header is sound and its chunks are all
    there."""
    if not head.startswith(EVTX_MAGIC):
        return "not an EVTX file (no ElfFile signature)"
    if len(head) < 128:
        return "truncated: the EVTX file header is incomplete"
    stored = struct.unpack_from("<I", head, 124)[0]
    if zlib.crc32(head[:120]) != stored:
        return "damaged: the EVTX file header checksum does not match"
    chunks = struct.unpack_from("<H", head, 42)[0]
    needed = EVTX_HEADER_SIZE + chunks * EVTX_CHUNK_SIZE
    if size < needed:
        return (
            f"truncated: the header announces {chunks} chunks ({needed} bytes), the file has {size}"
        )
    return None


def evtx_chunk_count(head: bytes) -> int:
    """How many chunks the sound ``.evtx`` header *head* announces."""
    return int(struct.unpack_from("<H", head, 42)[0])


def evtx_chunk_problem(chunk: bytes, index: int) -> str | None:
    """What is wrong with chunk *index* (from 0) of an ``.evtx`` file, or None.

    libevtx's layout: the ``ElfChnk`` signature; at 48 the offset of the free space,
    which ends the event records begun at 512; at 52 the CRC32 of those records; at 124
    the CRC32 of the header's bytes 0-120 and 128-512.
    """
    where = f"chunk {index + 1} (at byte {EVTX_HEADER_SIZE + index * EVTX_CHUNK_SIZE})"
    if len(chunk) < EVTX_CHUNK_SIZE:
        return f"truncated: {where} is incomplete"
    if not chunk.startswith(b"ElfChnk\x00"):
        return f"damaged: {where} has no ElfChnk signature"
    if zlib.crc32(chunk[:120] + chunk[128:512]) != struct.unpack_from("<I", chunk, 124)[0]:
        return f"damaged: the header checksum of {where} does not match"
    free = struct.unpack_from("<I", chunk, 48)[0]
    if not 512 <= free <= EVTX_CHUNK_SIZE:
        return f"damaged: {where} says its records end at {free}, outside the chunk"
    if zlib.crc32(chunk[512:free]) != struct.unpack_from("<I", chunk, 52)[0]:
        return f"damaged: the event records checksum of {where} does not match"
    return None


def decode_xml(data: bytes) -> str:
    """XML bytes as text: a UTF-8 or UTF-16 byte-order mark wins, UTF-16 without one is
    recognised by its first ``<``, anything else is UTF-8."""
    try:
        if data.startswith(b"\xef\xbb\xbf"):
            return data[3:].decode("utf-8")
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        if data.startswith(b"<\x00"):
            return data.decode("utf-16-le")
        if data.startswith(b"\x00<"):
            return data.decode("utf-16-be")
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not XML text: {exc.reason} at byte {exc.start}") from exc


@dataclass
class ParsedEvents:
    """The CAPI2 events read, and how many events of each other channel were skipped.

    An event read again (the same log given twice, overlapping exports of one machine,
    an .evtx beside its XML export) is counted in ``duplicates`` and kept once: it is
    the same event when every field read, its record number and time among them, is.
    """

    events: list[Capi2Event] = field(default_factory=list)
    others: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    _seen: set[Capi2Event] = field(default_factory=set, repr=False)

    def add(self, texts: Iterable[str]) -> None:
        """Read *texts* (each one or many ``<Event>`` elements); raises DataError for
        text that is no XML or an event with a malformed field."""
        for text in texts:
            for item in _events_of(text):
                if isinstance(item, Capi2Event):
                    if item in self._seen:
                        self.duplicates += 1
                        continue
                    self._seen.add(item)
                    self.events.append(item)
                else:
                    self.others[item] = self.others.get(item, 0) + 1


def parse_events(texts: Iterable[str]) -> ParsedEvents:
    """The events in *texts*: CAPI2 ones read, others counted by channel."""
    parsed = ParsedEvents()
    parsed.add(texts)
    return parsed


def _events_of(text: str) -> Iterator[Capi2Event | str]:
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise DataError("XML with a document type declaration is refused (entities)")
    body = _DECLARATION.sub("", text).lstrip("\ufeff")
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("end",))
    try:
        parser.feed("<rdptrust-events>")
        parser.feed(body)
        parser.feed("</rdptrust-events>")
        parser.close()
    except ET.ParseError as exc:
        raise DataError(f"not well-formed XML ({exc})") from exc
    for item in parser.read_events():
        element: object = item[-1]
        if isinstance(element, ET.Element) and _local(element.tag) == "Event":
            yield _event(element)
            element.clear()


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(element: ET.Element | None, name: str) -> ET.Element | None:
    if element is None:
        return None
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _children(element: ET.Element | None, name: str) -> list[ET.Element]:
    if element is None:
        return []
    return [child for child in element if _local(child.tag) == name]


def _child_text(element: ET.Element | None, name: str) -> str | None:
    child = _child(element, name)
    return None if child is None else _text(child.text)


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value[:MAX_FIELD] if value else None


def _event(element: ET.Element) -> Capi2Event | str:
    """The event, or the channel (or provider) name of an event that is not CAPI2's."""
    system = _child(element, "System")
    provider = _child(system, "Provider")
    channel = _child_text(system, "Channel")
    name = provider.get("Name") if provider is not None else None
    if channel != CAPI2_CHANNEL and name != CAPI2_PROVIDER:
        return channel or name or "(no channel)"
    event_id = _int(_child_text(system, "EventID"), "EventID", 10)
    created = _child(system, "TimeCreated")
    time = parse_time(created.get("SystemTime") if created is not None else None)
    record = _child(system, "EventRecordID")
    record_id = _int(record.text, "EventRecordID", 10) if record is not None else None
    user = _child(element, "UserData")
    body = next(iter(user), None) if user is not None else None
    aux = _child(body, "EventAuxInfo")
    corr = _child(body, "CorrelationAuxInfo")
    seq = corr.get("SeqNumber") if corr is not None else None
    cert = _child(body, "Certificate")
    chain_status = _child(_child(_child(body, "CertificateChain"), "TrustStatus"), "ErrorStatus")
    obj = _child(body, "Object")
    timeout = _child_text(body, "Timeout")
    result = _child(body, "Result")
    actions = [a.get("name", "") for a in _children(_child(body, "AdditionalInfo"), "Action")]
    return Capi2Event(
        event_id=event_id,
        record_id=record_id,
        time=time,
        task_id=_text(corr.get("TaskId")) if corr is not None else None,
        seq=_int(seq, "SeqNumber", 10) if seq is not None else None,
        process=_text(aux.get("ProcessName")) if aux is not None else None,
        subject=_text(cert.get("subjectName")) if cert is not None else None,
        sha1=_thumbprint(cert.get("fileRef")) if cert is not None else None,
        flags=_true_names(_child(body, "Flags")),
        trust_errors=_true_names(chain_status),
        url=_child_text(body, "URL"),
        object_type=_text(obj.get("type")) if obj is not None else None,
        timeout_s=parse_duration(timeout) if timeout is not None else None,
        actions=tuple(a[:MAX_FIELD] for a in actions if a),
        result=_result(result.get("value")) if result is not None else None,
    )


def _true_names(element: ET.Element | None) -> tuple[str, ...]:
    """The attribute names of *element* set to ``true``, in document order."""
    if element is None:
        return ()
    return tuple(k[:MAX_FIELD] for k, v in element.attrib.items() if v.lower() == "true")


def _thumbprint(file_ref: str | None) -> str | None:
    """The SHA-1 a ``fileRef`` (``9617...508F.cer``) names, lowercase; None otherwise."""
    if not file_ref:
        return None
    stem = file_ref.partition(".")[0]
    return stem.lower() if re.fullmatch(r"[0-9A-Fa-f]{40}", stem) else None


def _int(text: str | None, what: str, base: int) -> int:
    try:
        return int((text or "").strip(), base)
    except ValueError:
        raise DataError(f"CAPI2 event with a bad {what}: {(text or '')[:40]!r}") from None


def _result(value: str | None) -> str | None:
    if value is None:
        return None
    number = _int(value.removeprefix("0x").removeprefix("0X"), "Result", 16)
    if not 0 <= number <= 0xFFFFFFFF:
        raise DataError(f"CAPI2 event with a bad Result: {value[:40]!r}")
    return f"0x{number:08X}"


def parse_time(text: str | None) -> dt.datetime:
    """A ``SystemTime`` (``2017-05-19T02:02:36.046875Z``, up to 7 fraction digits as
    wevtutil writes them) as an aware UTC datetime."""
    match = _TIME.fullmatch((text or "").strip())
    if match is None:
        raise DataError(f"CAPI2 event with a bad TimeCreated: {(text or '')[:40]!r}")
    base, fraction, zone = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = dt.datetime.fromisoformat(base + (zone or "Z").replace("Z", "+00:00"))
    except ValueError:
        raise DataError(f"CAPI2 event with a bad TimeCreated: {text!r}") from None
    return moment.replace(microsecond=micros).astimezone(dt.UTC)


def parse_duration(text: str) -> float:
    """An ISO 8601 duration as the log writes it (``PT9.976S``, ``PT15S``) in seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or text.strip() in ("P", "PT"):
        raise DataError(f"CAPI2 event with a bad Timeout: {text[:40]!r}")
    parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
    seconds = (
        parts.get("d", 0.0) * 86400
        + parts.get("h", 0.0) * 3600
        + parts.get("m", 0.0) * 60
        + parts.get("s", 0.0)
    )
    return round(seconds, 6)
