"""Reading the inventory back: certificates by SHA-256, and hosts streamed one at a time."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest

from fixtures.documents import assert_valid
from fixtures.inventory import one_target_scan, record, served, small_fleet
from rdptrust.lab.certs import windows_self_signed
from rdptrust.model.records import HostSummary
from rdptrust.model.target import Target
from rdptrust.report.inventory import hosts_document, write_hosts_json
from rdptrust.report.jsonform import dumps
from rdptrust.store.inventory import Inventory


def test_a_certificate_is_found_by_its_sha256(inventory_db: str) -> None:
    target = Target("127.0.0.1", 3389)
    credentials = windows_self_signed("WIN-A")
    with Inventory.open(inventory_db) as inventory:
        assert inventory.certificate(credentials.sha256) is None
        scan_id = one_target_scan(inventory, target)
        recorded = record(inventory, scan_id, 0, target, served(target, credentials))
        found = inventory.certificate(credentials.sha256)
    assert found is not None
    assert found == recorded.certificate
    assert found.subject == "CN=WIN-A"
    assert found.self_signed


@pytest.mark.parametrize("count", [0, 1, 3])
def test_hosts_json_streams_the_same_document(inventory_db: str, count: int) -> None:
    # Given an inventory of *count* hosts, one with a hostile subject
    targets = [Target(f"127.0.0.{i + 1}", 3389) for i in range(count)]
    with Inventory.open(inventory_db) as inventory:
        if targets:
            scan_id = inventory.create_scan(["x"], {}, targets).id
            names = ['WIN-"A"', "WIN-B", "WIN-C"]
            for seq, target in enumerate(targets):
                credentials = windows_self_signed(names[seq])
                record(inventory, scan_id, seq, target, served(target, credentials))
        # When the document is written host by host
        out = io.StringIO()
        written = write_hosts_json(inventory.iter_hosts(), out)
        whole = hosts_document(inventory.hosts())
    # Then it is the whole document at once, valid, each host on a line of its own
    document = json.loads(out.getvalue())
    assert document == json.loads(dumps(whole))
    assert_valid(document)
    assert written == len(document["hosts"]) == count
    lines = out.getvalue().splitlines()
    assert len(lines) == count + 2 if count else len(lines) == 1
    for line, host in zip(lines[1:], document["hosts"], strict=False):
        assert json.loads(line.rstrip(",")) == host


@pytest.mark.parametrize("size", [1, 2, 256])
def test_host_batches_hold_the_hosts_of_hosts(inventory_db: str, size: int) -> None:
    # Given a fleet, one host seen twice
    with Inventory.open(inventory_db) as inventory:
        latest = small_fleet(inventory)
        # When its hosts are read a batch at a time
        batches = list(inventory.host_batches(size))
        listed = inventory.hosts()
    # Then the batches are at most *size* long and hold what hosts() lists, in order,
    # but for the certificates' SHA-1 thumbprints, which the batches do not read
    assert all(0 < len(batch) <= size for batch in batches)
    found = [host for batch in batches for host in batch]
    assert all(h.latest.certificate is None or h.latest.certificate.sha1 is None for h in found)
    assert found == [_without_sha1(host) for host in listed]
    # and each host's latest observation is the one the record API returned last
    assert [h.latest.id for h in found] == [latest[t].id for t in sorted(latest, key=_order)]
    for host in found:
        recorded = latest[Target(host.host, host.port)]
        assert host.latest.problems == recorded.problems
        assert host.latest.verdict == recorded.verdict
        assert host.observations == (2 if host.host == "10.0.0.1" else 1)
    assert found[0].latest.certificate is not None
    assert found[0].latest.certificate.common_name == "WIN-0-RENEWED"


def _without_sha1(host: HostSummary) -> HostSummary:
    certificate = host.latest.certificate
    if certificate is None:
        return host
    assert certificate.sha1 is not None
    latest = dataclasses.replace(
        host.latest, certificate=dataclasses.replace(certificate, sha1=None)
    )
    return dataclasses.replace(host, latest=latest)


def _order(target: Target) -> tuple[str, int]:
    return target.host, target.port


def test_longest_names_bound_the_host_and_name_columns(inventory_db: str) -> None:
    with Inventory.open(inventory_db) as inventory:
        assert inventory.longest_names() == (0, 0)
        latest = small_fleet(inventory)
        host, name = inventory.longest_names()
    assert host == max(len(str(t)) for t in latest)
    # the certificate replaced on the first host still counts: it is in the inventory
    assert name == len("WIN-0-RENEWED")
