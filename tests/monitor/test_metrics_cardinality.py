"""One answer holds a bounded number of per-URL series, whatever the certificate names."""

from __future__ import annotations

import dataclasses

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rdptrust.engine import AssessOptions, assess_probe
from rdptrust.model.assessment import Retrieval
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import ProbeResult, Timings
from rdptrust.model.retrieval import FetchOutcome, Purpose
from rdptrust.model.target import parse_target
from rdptrust.monitor.metrics import MAX_RETRIEVAL_SERIES, MAX_URL_LABEL, observation_registry


async def test_retrieval_series_are_capped_and_the_rest_counted() -> None:
    target = parse_target("127.0.0.1:1")
    probe = ProbeResult(
        target=target,
        address=None,
        negotiation=None,
        tls=None,
        protocols=(),
        tls_versions=(),
        timings=Timings(total_ms=1.0),
        error=ProbeFailure("connect", "refused"),
    )
    options = AssessOptions(diagnose=True, system_trust=False, known_hosts=None)
    observation = await assess_probe(target, probe, options)
    many = tuple(
        Retrieval(
            Purpose.CRL,
            f"http://crl{i}.example/{'x' * (400 if i == 0 else 1)}",
            FetchOutcome.SKIPPED if i % 2 else FetchOutcome.TIMEOUT,
            1.0,
            None,
            None,
            None,
            None,
            True,
            0.0,
            False,
        )
        for i in range(2000)
    )
    # as if the host had answered: the verdict metrics, retrievals included, are written
    reached = dataclasses.replace(probe, error=None)
    observation = dataclasses.replace(observation, probe=reached, retrievals=many)
    text = generate_latest(observation_registry(observation)).decode()
    samples = {
        s.name: s for f in text_string_to_metric_families(text) for s in f.samples if s.labels == {}
    }
    series = [
        s
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "rdptrust_retrieval_seconds"
    ]
    assert len(series) == MAX_RETRIEVAL_SERIES
    assert max(len(s.labels["url"]) for s in series) == MAX_URL_LABEL + 3
    assert samples["rdptrust_retrieval_series_truncated"].value == 2000 - MAX_RETRIEVAL_SERIES
    assert samples["rdptrust_retrievals_skipped"].value == 1000
