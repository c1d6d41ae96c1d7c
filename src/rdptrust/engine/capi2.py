"""Read CAPI2 Operational logs from files: ``.evtx`` (``wevtutil epl``) or event XML.

EVTX files are read with the ``evtx`` package (pyevtx-rs: Rust bindings of the
maintained ``evtx`` crate, wheels for Linux, macOS and Windows), which renders each
record as the XML Windows writes; that XML and XML files alike are parsed by
:mod:`rdptrust.protocol.capi2`. Every problem with a file's content is a
:class:`~rdptrust.errors.DataError` naming the file; a file that cannot be read at all
is an ``OSError`` (the CLI's 66/74).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from rdptrust.errors import DataError
from rdptrust.model.capi2 import CAPI2_CHANNEL, Capi2Log
from rdptrust.protocol.capi2 import (
    EVTX_CHUNK_SIZE,
    EVTX_HEADER_SIZE,
    EVTX_MAGIC,
    ParsedEvents,
    decode_xml,
    evtx_chunk_count,
    evtx_chunk_problem,
    evtx_header_problem,
)
from rdptrust.protocol.capi2_builds import chain_builds

#: Largest XML file read whole (an EVTX file is read record by record).
MAX_XML_BYTES = 512 * 1024 * 1024


def evtx_records(path: Path) -> Iterator[str]:
    """The XML of each record of the EVTX file *path*; DataError (without the path, which
    :func:`read_events` adds) when a record is damaged."""
    from evtx import PyEvtxParser

    try:
        parser = PyEvtxParser(os.fspath(path))
        for record in parser.records():
            if not isinstance(record, dict):
                raise DataError("an EVTX record could not be read")
            yield str(record["data"])
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise DataError(f"unreadable EVTX records: {exc}") from exc


def read_events(path: Path, parsed: ParsedEvents) -> None:
    """Add the events of the log file *path* (EVTX or XML) to *parsed*."""
    with path.open("rb") as handle:
        head = handle.read(EVTX_HEADER_SIZE)
        size = os.fstat(handle.fileno()).st_size
        if head.startswith(EVTX_MAGIC):
            problem = evtx_header_problem(head, size)
            for index in range(evtx_chunk_count(head) if problem is None else 0):
                handle.seek(EVTX_HEADER_SIZE + index * EVTX_CHUNK_SIZE)
                problem = evtx_chunk_problem(handle.read(EVTX_CHUNK_SIZE), index)
                if problem is not None:
                    break
            if problem is not None:
                raise DataError(f"{path}: {problem}")
            texts: Iterable[str] = evtx_records(path)
        else:
            if size > MAX_XML_BYTES:
                raise DataError(f"{path}: an XML log over {MAX_XML_BYTES} bytes is refused")
            data = head + handle.read()
            if not data.strip():
                raise DataError(f"{path}: empty file, neither EVTX nor event XML")
            if b"<" not in data[:64].replace(b"\x00", b""):
                raise DataError(f"{path}: neither an EVTX file nor event XML")
            texts = (decode_xml(data),)
    try:
        parsed.add(texts)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from exc


def load_capi2(paths: Sequence[Path]) -> Capi2Log:
    """The chain builds of the CAPI2 logs *paths*; DataError when a file holds no CAPI2
    event (another channel's log, an empty export) or is not a log at all."""
    parsed = ParsedEvents()
    for path in paths:
        before = len(parsed.events) + parsed.duplicates
        read_events(path, parsed)
        if len(parsed.events) + parsed.duplicates == before:
            others = ", ".join(f"{n} of {name}" for name, n in sorted(parsed.others.items()))
            held = f" (it holds events: {others})" if others else " (it holds no events)"
            raise DataError(f"{path}: no {CAPI2_CHANNEL} events{held}")
    return dataclasses.replace(chain_builds(parsed.events), duplicates=parsed.duplicates)
