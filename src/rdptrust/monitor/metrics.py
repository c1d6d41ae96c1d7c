"""Prometheus metrics for one observation, in a fresh registry per scrape.

=============================================  =============================================
metric                                         value
=============================================  =============================================
``rdptrust_probe_success``                     1 when the host answered the negotiation
``rdptrust_probe_duration_seconds``            the whole scrape's probe (and diagnosis)
``rdptrust_probe_failure_info{kind}``          1 when the probe failed; ``kind`` says how
``rdptrust_connect_seconds``                   TCP connect of the main connection
``rdptrust_negotiation_seconds``               X.224 request to confirm
``rdptrust_tls_handshake_seconds``             the TLS handshake after the confirm
``rdptrust_tls_version_info{version,cipher}``  1; what the main connection settled on
``rdptrust_protocol_accepted{protocol}``       1 or 0 per security protocol (enumeration);
                                               absent when it cannot be told
``rdptrust_tls_version_accepted{version}``     1 or 0 per TLS version (enumeration)
``rdptrust_cert_not_after_timestamp_seconds``  end of the leaf certificate (Unix time)
``rdptrust_cert_not_before_timestamp_seconds`` start of the leaf certificate
``rdptrust_chain_not_after_timestamp_seconds`` earliest end among the path's certificates
``rdptrust_cert_self_signed``                  1 when the leaf is self-signed
``rdptrust_cert_info{subject,issuer,sha256}``  1; the leaf's names and fingerprint
``rdptrust_chain_trusted``                     1 when the path ends in a trust anchor or the
                                               leaf matches its pin
``rdptrust_cert_pinned``                       1 when the leaf matches its pin, 0 when the
                                               pin differs or nothing is pinned (only with a
                                               pinned-host store)
``rdptrust_cert_changed``                      1 when the leaf differs from its pin, or from
                                               the previous leaf this exporter saw for the
                                               target (for the module's hold time)
``rdptrust_cert_last_change_timestamp_seconds`` when this exporter last saw the leaf change
``rdptrust_verdict``                           0 ok, 1 warning, 2 critical, 3 unknown
``rdptrust_problem{code,severity}``            1 per problem and security finding
``rdptrust_predicted_stall_seconds``           the modelled "Securing remote connection"
                                               wait (diagnosis only)
``rdptrust_cert_revoked``                      1 when revoked (diagnosis only, when known)
``rdptrust_retrieval_seconds{purpose,url,outcome}``  each URL fetch (diagnosis only), the
                                               first :data:`MAX_RETRIEVAL_SERIES`; a
                                               retrieval the destination policy refused
                                               has ``outcome="skipped"``
``rdptrust_retrieval_series_truncated``        retrievals left out of the series above
``rdptrust_retrievals_skipped``                retrievals not made: destination refused
=============================================  =============================================

Metrics of things that were not observed (no certificate, no enumeration, no
diagnosis) are left out, as blackbox_exporter does, rather than given a fake value.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from rdptrust.model.assessment import Assessment
from rdptrust.model.pin import PinStatus

#: Targets whose last certificate the exporter remembers (least recently seen dropped).
MAX_REMEMBERED_TARGETS = 10_000

#: Per-URL series in one answer at most: a certificate chooses how many URLs it names,
#: so it must not choose how many series Prometheus stores (label cardinality).
MAX_RETRIEVAL_SERIES = 32
#: Longest URL label; a longer URL is cut and ends in "...".
MAX_URL_LABEL = 256

_VERDICT_VALUE = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}


@dataclass(frozen=True)
class ChangeState:
    """Whether a target's certificate changed: ``last_change`` is a Unix time, None = never."""

    changed: bool
    last_change: float | None


class CertificateMemory:
    """The last leaf fingerprint seen per target, to tell when it changes.

    Bounded: beyond :data:`MAX_REMEMBERED_TARGETS` the least recently seen target is
    forgotten. Safe to share between threads.
    """

    def __init__(self, capacity: int = MAX_REMEMBERED_TARGETS) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[str, tuple[str, float | None]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def see(self, key: str, sha256: str, *, hold_s: float, now: float | None = None) -> ChangeState:
        """Record *sha256* for *key*; changed while the last change is under *hold_s* old."""
        moment = time.time() if now is None else now
        with self._lock:
            previous = self._seen.pop(key, None)
            last_change = previous[1] if previous is not None else None
            if previous is not None and previous[0] != sha256:
                last_change = moment
            self._seen[key] = (sha256, last_change)
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
        changed = last_change is not None and moment - last_change <= hold_s
        return ChangeState(changed, last_change)


def observation_registry(
    observation: Assessment, change: ChangeState | None = None
) -> CollectorRegistry:
    """A new registry holding the metrics of *observation* (see the module docstring).

    *change* is what the exporter's memory says about the leaf; None when there was no
    leaf or nothing is remembered.
    """
    registry = CollectorRegistry(auto_describe=True)

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, labels, registry=registry)

    probe = observation.probe
    gauge("rdptrust_probe_success", "1 when the RDP host answered the negotiation.").set(
        1 if probe.ok else 0
    )
    gauge("rdptrust_probe_duration_seconds", "Seconds the probe (and diagnosis) took in all.").set(
        observation.elapsed_ms / 1000.0
    )
    if probe.error is not None:
        gauge(
            "rdptrust_probe_failure_info",
            "1; why the probe failed (connect, timeout, tls, remote_protocol, ...).",
            ("kind",),
        ).labels(probe.error.kind).set(1)
    timings = probe.timings
    for name, doc, value in (
        ("rdptrust_connect_seconds", "TCP connect of the main connection.", timings.connect_ms),
        ("rdptrust_negotiation_seconds", "X.224 request to confirm.", timings.x224_ms),
        ("rdptrust_tls_handshake_seconds", "TLS handshake after the confirm.", timings.tls_ms),
    ):
        if value is not None:
            gauge(name, doc).set(value / 1000.0)
    if probe.tls is not None:
        gauge(
            "rdptrust_tls_version_info",
            "TLS version and cipher of the main connection.",
            ("version", "cipher"),
        ).labels(probe.tls.version, probe.tls.cipher).set(1)
    known_protocols = [p for p in probe.protocols if p.accepted is not None]
    if known_protocols:
        accepted = gauge(
            "rdptrust_protocol_accepted",
            "1 when the host accepts the security protocol, 0 when it refuses it.",
            ("protocol",),
        )
        for support in known_protocols:
            accepted.labels(support.name).set(1 if support.accepted else 0)
    known_versions = [v for v in probe.tls_versions if v.accepted is not None]
    if known_versions:
        versions = gauge(
            "rdptrust_tls_version_accepted",
            "1 when the host completes a handshake with the TLS version, else 0.",
            ("version",),
        )
        for version in known_versions:
            versions.labels(version.version).set(1 if version.accepted else 0)
    _certificate_metrics(observation, change, gauge)
    _verdict_metrics(observation, gauge)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text exposition format (version 0.0.4)."""
    return generate_latest(registry)


class _GaugeFactory(Protocol):
    def __call__(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge: ...


def _certificate_metrics(
    observation: Assessment, change: ChangeState | None, gauge: _GaugeFactory
) -> None:
    leaf = observation.leaf
    if leaf is None:
        return
    gauge("rdptrust_cert_not_after_timestamp_seconds", "End of the leaf certificate.").set(
        leaf.not_after.timestamp()
    )
    gauge("rdptrust_cert_not_before_timestamp_seconds", "Start of the leaf certificate.").set(
        leaf.not_before.timestamp()
    )
    chain_end = observation.not_after
    if chain_end is not None:
        gauge(
            "rdptrust_chain_not_after_timestamp_seconds",
            "Earliest end among the certificates of the path.",
        ).set(chain_end.timestamp())
    gauge("rdptrust_cert_self_signed", "1 when the leaf certificate is self-signed.").set(
        1 if leaf.self_signed else 0
    )
    gauge(
        "rdptrust_cert_info",
        "The leaf certificate's subject, issuer and SHA-256 fingerprint.",
        ("subject", "issuer", "sha256"),
    ).labels(leaf.subject, leaf.issuer, leaf.sha256).set(1)
    if observation.trusted is not None:
        gauge(
            "rdptrust_chain_trusted",
            "1 when the path ends in a trust anchor or the leaf matches its pin.",
        ).set(1 if observation.trusted else 0)
    pin = observation.pin
    if pin is not None:
        gauge("rdptrust_cert_pinned", "1 when the leaf matches its pinned certificate.").set(
            1 if pin.status is PinStatus.MATCH else 0
        )
    pin_changed = pin is not None and pin.status is PinStatus.CHANGED
    remembered_change = change is not None and change.changed
    gauge(
        "rdptrust_cert_changed",
        "1 when the leaf differs from its pin or from the previous one seen for the target.",
    ).set(1 if pin_changed or remembered_change else 0)
    if change is not None and change.last_change is not None:
        gauge(
            "rdptrust_cert_last_change_timestamp_seconds",
            "When this exporter last saw the target's certificate change.",
        ).set(change.last_change)


def _verdict_metrics(observation: Assessment, gauge: _GaugeFactory) -> None:
    if not observation.reachable and not observation.problems:
        return
    gauge(
        "rdptrust_verdict",
        "The verdict: 0 ok, 1 warning, 2 critical, 3 unknown (pinned-host store unreadable).",
    ).set(_VERDICT_VALUE[observation.verdict.value])
    if observation.problems or observation.findings:
        problem = gauge(
            "rdptrust_problem",
            "1 per problem found with the chain and per security finding of the host.",
            ("code", "severity"),
        )
        for found in (*observation.problems, *observation.findings):
            problem.labels(found.code, found.severity.value).set(1)
    if observation.predicted_stall_s is not None:
        gauge(
            "rdptrust_predicted_stall_seconds",
            "Modelled seconds the Windows client waits on 'Securing remote connection'.",
        ).set(observation.predicted_stall_s)
    if observation.revoked is not None:
        gauge("rdptrust_cert_revoked", "1 when a certificate of the path is revoked.").set(
            1 if observation.revoked else 0
        )
    if observation.retrievals:
        retrieval = gauge(
            "rdptrust_retrieval_seconds",
            "Seconds each URL fetch of the diagnosis took, by purpose, URL and outcome.",
            ("purpose", "url", "outcome"),
        )
        shown: set[tuple[str, str, str]] = set()
        left_out = 0
        for item in observation.retrievals:
            url = item.url if len(item.url) <= MAX_URL_LABEL else item.url[:MAX_URL_LABEL] + "..."
            key = (item.purpose.value, url, item.outcome.value)
            if key not in shown and len(shown) >= MAX_RETRIEVAL_SERIES:
                left_out += 1
                continue
            shown.add(key)
            retrieval.labels(*key).set(item.elapsed_ms / 1000.0)
        gauge(
            "rdptrust_retrieval_series_truncated",
            f"Retrievals left out of rdptrust_retrieval_seconds (at most "
            f"{MAX_RETRIEVAL_SERIES} series per answer).",
        ).set(left_out)
        gauge(
            "rdptrust_retrievals_skipped",
            "Retrievals not made because the destination policy refused their address.",
        ).set(sum(1 for item in observation.retrievals if item.outcome.value == "skipped"))
