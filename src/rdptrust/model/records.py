"""The inventory's records: what a scan hands to the store, and what queries give back.

Plain frozen values with no behaviour beyond their own fields: the scan loop builds the
ones going in (:class:`HostResult`, :class:`DiagnosisRecord`, :class:`CertificateEntry`,
:class:`ProblemRecord`), :mod:`rdptrust.store` returns the others, and
:mod:`rdptrust.report` renders them without touching the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.target import Target

if TYPE_CHECKING:
    from rdptrust.model.probe import ProbeResult

#: ``ScanInfo.status`` values.
SCAN_STATUSES = ("running", "interrupted", "done")
#: ``EventRecord.kind`` values.
EVENT_KINDS = ("first-seen", "certificate-changed", "became-unreachable", "became-reachable")
#: ``EventRecord.change`` values of a ``certificate-changed`` event.
CHANGE_CLASSES = ("recreation", "ca-issued", "unexpected")


# --- values going in ----------------------------------------------------------------


@dataclass(frozen=True)
class ProblemRecord:
    """One problem found by a diagnosis or a security finding: stable code, severity, message."""

    code: str
    severity: str
    message: str


@dataclass(frozen=True)
class DiagnosisRecord:
    """What the assessment of the host concluded, as stored with its observation.

    ``predicted_stall_s`` is None when no prediction was made (the retrievals did not run,
    or there was no chain). ``problems`` holds the assessment's problems and the probe's
    findings. ``retrievals`` holds the JSON form of each retrieval (purpose, url,
    outcome, elapsed_ms); None when the host was assessed without them (a scan without
    ``--diagnose``).
    """

    verdict: str
    predicted_stall_s: float | None
    problems: tuple[ProblemRecord, ...] = ()
    retrievals: tuple[Mapping[str, Any], ...] | None = ()


@dataclass(frozen=True)
class HostResult:
    """What observing one target produced.

    ``probe`` is None when no probe result exists (the deadline passed, or the observer
    failed); ``failure`` then says why. ``diagnosis`` is None when the host was not
    diagnosed.
    """

    probe: ProbeResult | None
    failure: ProbeFailure | None = None
    diagnosis: DiagnosisRecord | None = None


@dataclass(frozen=True)
class CertificateEntry:
    """What was read of a leaf certificate, for the inventory to keep with its DER.

    The date, key and name fields are None when the certificate could not be decoded
    (:meth:`undecodable`); ``common_name`` is None also when the subject has no CN.
    """

    subject: str
    issuer: str
    common_name: str | None
    self_signed: bool
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    public_key_sha256: str | None
    key_type: str | None
    key_bits: int | None
    signature_hash: str | None

    @classmethod
    def undecodable(cls, reason: str) -> CertificateEntry:
        """The entry of a certificate that could not be decoded, saying why."""
        return cls(
            subject=f"(undecodable certificate: {reason})",
            issuer="",
            common_name=None,
            self_signed=False,
            not_before=None,
            not_after=None,
            public_key_sha256=None,
            key_type=None,
            key_bits=None,
            signature_hash=None,
        )


# --- values coming out --------------------------------------------------------------


@dataclass(frozen=True)
class CertificateRecord:
    """A leaf certificate as kept in the inventory.

    The date, key and name fields are None when the certificate could not be decoded
    (its DER is still kept); ``common_name`` is None also when the subject has no CN.
    ``sha1`` is the thumbprint Windows shows (lowercase hex); None only in a record
    made without its DER.
    """

    sha256: str
    subject: str
    issuer: str
    common_name: str | None
    self_signed: bool
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    public_key_sha256: str | None
    key_type: str | None
    key_bits: int | None
    signature_hash: str | None
    first_seen: dt.datetime
    sha1: str | None = None


@dataclass(frozen=True)
class EventRecord:
    """Something that changed about a host between two scans.

    ``change`` is the class of a ``certificate-changed`` event (recreation, ca-issued,
    unexpected) and None for other kinds; ``old_sha256`` / ``new_sha256`` are None when
    no certificate is involved.
    """

    id: int
    scan_id: int
    host: str
    port: int
    at: dt.datetime
    kind: str
    change: str | None
    old_sha256: str | None
    new_sha256: str | None
    detail: str
    #: the site of the observation the event compares with the previous one from there;
    #: None for events recorded before sites existed
    site: str | None = None


@dataclass(frozen=True)
class ObservationRecord:
    """What one scan saw of one host.

    ``error_kind``/``error_message`` are None when the host was probed (``ok``).
    ``certificate`` is None when no TLS session was made. ``selected_protocol`` is
    None when the host refused what was asked (``negotiation_failure`` says how) or was
    not reached. ``protocols`` maps each enumerated protocol to accepted (True, False or
    None = unknown) and is empty when the scan did not enumerate; ``tls_versions`` the
    same for TLS versions. The timings are None for phases not reached. ``verdict`` is
    None when the host was recorded without an assessment; ``predicted_stall_s`` and
    ``retrievals`` are None when the host was not diagnosed (no retrievals ran).
    """

    id: int
    scan_id: int
    host: str
    port: int
    observed_at: dt.datetime
    ok: bool
    error_kind: str | None
    error_message: str | None
    address: str | None
    selected_protocol: str | None
    negotiation_failure: str | None
    certificate: CertificateRecord | None
    chain: tuple[str, ...]
    tls_version: str | None
    tls_cipher: str | None
    protocols: Mapping[str, bool | None]
    tls_versions: Mapping[str, bool | None]
    connect_ms: float | None
    x224_ms: float | None
    tls_ms: float | None
    total_ms: float | None
    verdict: str | None
    predicted_stall_s: float | None
    retrievals: tuple[Mapping[str, Any], ...] | None
    problems: tuple[ProblemRecord, ...] = ()
    events: tuple[EventRecord, ...] = field(default=())
    #: NTLM host information (names, ``os_version``, ``server_time``); None when not asked.
    ntlm: Mapping[str, Any] | None = None
    #: where the scan ran (``scan --site``: the network the clients sit on); None when
    #: recorded before sites existed
    site: str | None = None

    @property
    def target(self) -> Target:
        return Target(self.host, self.port)


@dataclass(frozen=True)
class Flushed:
    """A batch of staged records stored: its records in the order staged, and the
    ``(scan_id, seq)`` of the targets left out because another worker of a queued scan
    had recorded them first."""

    records: tuple[ObservationRecord, ...] = ()
    taken: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class ScanInfo:
    """One scan run. ``finished_at`` is None while running or when it was killed."""

    id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    status: str
    arguments: tuple[str, ...]
    options: Mapping[str, Any]
    pid: int | None
    target_count: int
    done_count: int
    #: where the scan ran (``scan --site``) and the machine it ran on; None for scans
    #: recorded before sites existed
    site: str | None = None
    machine: str | None = None
    #: queued with ``scan --queue``: worked by ``rdptrust worker`` processes of its site
    queued: bool = False


@dataclass(frozen=True)
class WorkerProgress:
    """One worker's share of a queued scan: targets it recorded, and those it holds now
    (claimed, lease not passed). *worker* is ``machine:pid``."""

    worker: str
    done: int
    claimed: int


@dataclass(frozen=True)
class QueueStatus:
    """A queued scan's progress: its targets done, claimed (by a live lease) and waiting,
    and each worker's share."""

    scan: ScanInfo
    done: int
    claimed: int
    waiting: int
    workers: tuple[WorkerProgress, ...]


@dataclass(frozen=True)
class HostSummary:
    """A host's latest state from one site: its last observation from there, and when the
    host was first seen (from any site). *observations* counts those from that site."""

    host: str
    port: int
    first_seen: dt.datetime
    observations: int
    latest: ObservationRecord

    @property
    def site(self) -> str | None:
        return self.latest.site


@dataclass(frozen=True)
class CertificateSpan:
    """A certificate a host presented, and the first and last time it was seen there."""

    certificate: CertificateRecord
    first_seen: dt.datetime
    last_seen: dt.datetime
    observations: int


@dataclass(frozen=True)
class HostHistory:
    """Everything the inventory knows about one host, oldest first."""

    host: str
    port: int
    first_seen: dt.datetime
    certificates: tuple[CertificateSpan, ...]
    observations: tuple[ObservationRecord, ...]
    events: tuple[EventRecord, ...]
