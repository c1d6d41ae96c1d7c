"""Reading the inventory back: certificates by SHA-256, and hosts streamed one at a time."""

from __future__ import annotations

import io
import json

import pytest

from fixtures.inventory import one_target_scan, record, served
from rdptrust.lab.certs import windows_self_signed
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
        write_hosts_json(inventory.iter_hosts(), out)
        whole = dumps(hosts_document(inventory.hosts()))
    # Then it is the same text as the whole document at once, and valid JSON
    assert out.getvalue() == whole + "\n"
    assert len(json.loads(out.getvalue())["hosts"]) == count
