"""What a Windows client recorded in its CAPI2 Operational log, as values.

One :class:`Capi2Event` per ``<Event>`` (WINDOWS.md §8; the Microsoft-Windows-CAPI2 event
schema: events 10/11 Build Chain start/stop, 50/51 Retrieve Object from Cache, 52/53
Retrieve Object from Network). :class:`ChainBuild` is one chain build (a 10 ... 11 span
of one ``CorrelationAuxInfo TaskId``) with the retrievals made inside it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from rdptrust.model.windows import RevocationRegime

#: The channel and provider of the events read.
CAPI2_CHANNEL = "Microsoft-Windows-CAPI2/Operational"
CAPI2_PROVIDER = "Microsoft-Windows-CAPI2"
#: The chain flag that selects the accumulative revocation time-out (CERT_CHAIN_PARA).
ACCUMULATIVE_FLAG = "CERT_CHAIN_REVOCATION_ACCUMULATIVE_TIMEOUT"


class EventId(enum.IntEnum):
    """The CAPI2 event ids rdptrust reads (WINDOWS.md §8)."""

    BUILD_CHAIN_START = 10
    BUILD_CHAIN = 11
    CACHE_START = 50
    CACHE = 51
    NETWORK_START = 52
    NETWORK = 53


class RetrievalSource(enum.StrEnum):
    """Where a recorded retrieval was served from."""

    NETWORK = "network"
    CACHE = "cache"


#: Names of the results a chain build or retrieval records (winerror.h, wininet.h,
#: winhttp.h): the hex value as the log writes it, with ``0x`` and eight digits.
RESULT_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "0x00000000": "S_OK",
        "0x80072EE2": "ERROR_INTERNET_TIMEOUT",
        "0x80072EE7": "ERROR_INTERNET_NAME_NOT_RESOLVED",
        "0x80072EF1": "ERROR_INTERNET_OPERATION_CANCELLED",
        "0x80072EFD": "ERROR_INTERNET_CANNOT_CONNECT",
        "0x80072EFE": "ERROR_INTERNET_CONNECTION_ABORTED",
        "0x80072EFF": "ERROR_INTERNET_CONNECTION_RESET",
        "0x80072F78": "ERROR_HTTP_INVALID_SERVER_RESPONSE",
        "0x80072F8F": "ERROR_WINHTTP_SECURE_FAILURE",
        "0x80072F94": "ERROR_WINHTTP_AUTODETECTION_FAILED",
        "0x80190193": "HTTP_E_STATUS_FORBIDDEN",
        "0x80190194": "HTTP_E_STATUS_NOT_FOUND",
        "0x80190197": "HTTP_E_STATUS_PROXY_AUTH_REQ",
        "0x800704CF": "ERROR_NETWORK_UNREACHABLE",
        "0x800705B4": "ERROR_TIMEOUT",
        "0x80092004": "CRYPT_E_NOT_FOUND",
        "0x80092010": "CRYPT_E_REVOKED",
        "0x80092012": "CRYPT_E_NO_REVOCATION_CHECK",
        "0x80092013": "CRYPT_E_REVOCATION_OFFLINE",
        "0x800B0101": "CERT_E_EXPIRED",
        "0x800B0109": "CERT_E_UNTRUSTEDROOT",
        "0x800B010A": "CERT_E_CHAINING",
        "0x800B010C": "CERT_E_REVOKED",
        "0x800B010F": "CERT_E_CN_NO_MATCH",
        "0x800B0110": "CERT_E_WRONG_USAGE",
        "0x800B0112": "CERT_E_UNTRUSTEDCA",
        "0x80096004": "TRUST_E_CERT_SIGNATURE",
    }
)


def result_name(result: str) -> str | None:
    """The name of *result* (``0x80072EE2``), or None when rdptrust does not know it."""
    return RESULT_NAMES.get(result.upper().replace("0X", "0x"))


@dataclass(frozen=True)
class Capi2Event:
    """One recorded event, with the fields rdptrust reads (None: the event has none).

    ``subject``/``sha1`` are the event's own ``Certificate`` (``sha1`` from ``fileRef``,
    lowercase hex); ``flags`` the names of its ``Flags`` that are true, in log order;
    ``trust_errors`` those of the chain's ``TrustStatus/ErrorStatus``; ``actions`` the
    proxy ``Action`` names; ``result`` the ``Result`` value as ``0x`` and eight hex digits.
    """

    event_id: int
    record_id: int | None
    time: dt.datetime
    task_id: str | None
    seq: int | None
    process: str | None
    subject: str | None = None
    sha1: str | None = None
    flags: tuple[str, ...] = ()
    trust_errors: tuple[str, ...] = ()
    url: str | None = None
    object_type: str | None = None
    timeout_s: float | None = None
    actions: tuple[str, ...] = ()
    result: str | None = None


@dataclass(frozen=True)
class RecordedRetrieval:
    """One retrieval the client made. ``elapsed_ms`` is None when its start event is
    missing; ``timeout_s`` None when the log gives none (cache retrievals);
    ``proxy_action`` the proxy actions, distinct, in order, joined by ``, `` (None: not
    recorded); ``result_name`` None for a result rdptrust does not know."""

    source: RetrievalSource
    url: str
    object: str | None
    timeout_s: float | None
    elapsed_ms: float | None
    proxy_action: str | None
    result: str
    result_name: str | None
    started: dt.datetime

    @property
    def failed(self) -> bool:
        return self.result != "0x00000000"


@dataclass(frozen=True)
class ChainBuild:
    """One chain build: events 10 ... 11 of one task. ``subject``/``sha1`` are None and
    ``elapsed_ms`` is None when the stop event is missing (a log cut short)."""

    task_id: str
    process: str
    subject: str | None
    sha1: str | None
    flags: tuple[str, ...]
    revocation_timeouts: RevocationRegime
    started: dt.datetime
    elapsed_ms: float | None
    trust_errors: tuple[str, ...]
    retrievals: tuple[RecordedRetrieval, ...]

    @property
    def rdp(self) -> bool:
        """True for the Remote Desktop client's chain builds (``mstsc.exe``, with or
        without a folder)."""
        return self.process.replace("/", "\\").rsplit("\\", 1)[-1].lower() == "mstsc.exe"


@dataclass(frozen=True)
class Capi2Log:
    """The chain builds of one or more logs, RDP ones first, then by start time.

    ``events`` counts the CAPI2 events read (each once); ``duplicates`` the events read
    again from overlapping logs; ``processes`` the chain builds per process.
    """

    chain_builds: tuple[ChainBuild, ...]
    events: int
    processes: Mapping[str, int]
    duplicates: int = 0


@dataclass(frozen=True)
class SettledSetting:
    """A setting of the modelled client that the record settles: ``name`` is a
    :class:`~rdptrust.model.windows.WindowsSettings` field, ``value`` its value as
    text, ``evidence`` what in the log shows it."""

    name: str
    value: str
    evidence: str


@dataclass(frozen=True)
class WaitComparison:
    """One wait, predicted beside recorded. ``predicted_s`` is None when rdptrust
    predicted no such retrieval, ``recorded_s`` None when the client made none;
    ``result`` is the recorded result's name (or hex), None when not recorded."""

    purpose: str | None
    url: str
    predicted_s: float | None
    recorded_s: float | None
    result: str | None
    agrees: bool
    note: str


@dataclass(frozen=True)
class RecordComparison:
    """rdptrust's prediction for one certificate beside one recorded chain build of it.

    ``task_id`` names the chain build compared (None: the log has none for the
    certificate, so every predicted wait is unrecorded); ``recorded_s`` is that chain
    build's elapsed time.
    """

    target: str
    sha1: str
    task_id: str | None
    predicted_s: float
    recorded_s: float | None
    waits: tuple[WaitComparison, ...]
    settled: tuple[SettledSetting, ...]

    @property
    def total_agrees(self) -> bool:
        """The predicted wait and the recorded chain build's time agree (within 1 s or
        a fifth); true when nothing was recorded and nothing predicted."""
        recorded = self.recorded_s or 0.0
        return abs(self.predicted_s - recorded) <= max(1.0, 0.2 * max(self.predicted_s, recorded))

    @property
    def agrees(self) -> bool | None:
        """Model and record agree, wait by wait and in total; None when the log holds no
        chain build of the certificate, so there is nothing to compare."""
        if self.task_id is None:
            return None
        return self.total_agrees and all(w.agrees for w in self.waits)
