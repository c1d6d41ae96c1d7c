"""Sites: one host seen from two networks keeps both views, on both backends."""

from __future__ import annotations

import pytest

from fixtures.inventory import served
from rdptrust.engine.scan import record_result
from rdptrust.errors import UsageError
from rdptrust.lab.certs import windows_self_signed
from rdptrust.model.records import DiagnosisRecord, HostResult
from rdptrust.model.site import parse_site
from rdptrust.model.target import Target
from rdptrust.report.sites import compare_sites
from rdptrust.store.inventory import Inventory

TARGET = Target("127.0.0.1", 3389)
CREDENTIALS = windows_self_signed("WIN-SITES")


def _scan(inventory: Inventory, site: str | None, *, stall: float | None, ok: bool = True) -> None:
    scan = inventory.create_scan([str(TARGET)], {}, [TARGET], site=site)
    probe = served(TARGET, CREDENTIALS if ok else None)
    diagnosis = (
        DiagnosisRecord(
            verdict="critical" if stall else "ok",
            predicted_stall_s=stall,
            retrievals=(),
            problems=(),
        )
        if stall is not None and ok
        else None
    )
    record_result(inventory, scan.id, 0, TARGET, HostResult(probe, diagnosis=diagnosis))
    inventory.finish_scan(scan.id, "done")


def test_a_host_seen_from_two_sites_keeps_both_views(inventory_db: str) -> None:
    with Inventory.open(inventory_db) as inventory:
        # Given the host scanned from hq (no stall), then twice from branch-2 (a stall)
        _scan(inventory, "hq", stall=0.0)
        _scan(inventory, "branch-2", stall=15.0)
        _scan(inventory, "branch-2", stall=15.0)
        assert [s.site for s in inventory.scans()] == ["branch-2", "branch-2", "hq"]
        # Then hosts has one row per site, each with its own latest view and count
        hosts = inventory.hosts()
        assert [(h.site, h.latest.predicted_stall_s, h.observations) for h in hosts] == [
            ("branch-2", 15.0, 2),
            ("hq", 0.0, 1),
        ]
        assert [h.site for h in inventory.hosts(site="hq")] == ["hq"]
        assert inventory.sites() == ["branch-2", "hq"]
        # And the history, whole or of one site, keeps where each observation was made
        history = inventory.history(TARGET)
        assert [o.site for o in history.observations] == ["hq", "branch-2", "branch-2"]
        assert [o.site for o in inventory.history(TARGET, site="branch-2").observations] == [
            "branch-2",
            "branch-2",
        ]
        with pytest.raises(UsageError, match="from nowhere-else"):
            inventory.history(TARGET, site="nowhere-else")
        # And each site's first scan of the host is its first-seen there; the same
        # certificate from the second site is no change
        assert [(e.site, e.kind) for e in history.events] == [
            ("hq", "first-seen"),
            ("branch-2", "first-seen"),
        ]
        assert [e.site for e in inventory.events(site="hq")] == ["hq"]
        # And the comparison says what each site sees
        (comparison,) = compare_sites(h.latest for h in hosts)
        assert comparison.differs
        assert comparison.text() == "stalls 15.0 s from branch-2, no stall from hq"


def test_reachability_events_compare_within_one_site(inventory_db: str) -> None:
    with Inventory.open(inventory_db) as inventory:
        # Given the host reachable from hq, unreachable from branch-2, reachable from hq
        _scan(inventory, "hq", stall=None)
        _scan(inventory, "branch-2", stall=None, ok=False)
        _scan(inventory, "hq", stall=None)
        kinds = [(e.site, e.kind) for e in inventory.history(TARGET).events]
        # Then no site's view flaps because of another's: no became-unreachable or
        # became-reachable, only each site's first sight
        assert kinds == [("hq", "first-seen"), ("branch-2", "first-seen")]
        (comparison,) = compare_sites(h.latest for h in inventory.hosts())
        assert comparison.text() == "not reachable (connect) from branch-2, not diagnosed from hq"


def test_same_view_from_two_sites_is_not_a_difference(inventory_db: str) -> None:
    with Inventory.open(inventory_db) as inventory:
        _scan(inventory, "a", stall=0.0)
        _scan(inventory, "b", stall=0.0)
        (comparison,) = compare_sites(h.latest for h in inventory.hosts())
        assert not comparison.differs


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 64, "hq;rm", "ü"])
def test_site_names_are_checked(name: str) -> None:
    with pytest.raises(UsageError, match="not a site name"):
        parse_site(name)


def test_site_names_that_are_accepted() -> None:
    for name in ("hq", "branch-2", "WIN-01.corp", "x" * 63, "site_9"):
        assert parse_site(name) == name
