"""Recording a batch reads the hosts rows of its own targets only, however many ports share
a host name (a gateway, NAT port forwards, a lab on one address)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any

from rdptrust.model.target import Target
from rdptrust.store import recording
from rdptrust.store.inventory import Inventory

GATEWAY = "gw.example.test"
AT = "2026-12-04T00:00:00.000Z"


class CountingRows:
    """A connection that counts the rows its queries return."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.rows = 0

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        found = list(self._db.execute(sql, parameters))
        self.rows += len(found)
        return found

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any:
        return self._db.executemany(sql, rows)


def test_a_batch_reads_only_its_own_hosts_rows(inventory_db: str) -> None:
    # Given an inventory that holds 300 ports of one host name
    with Inventory.open(inventory_db) as inventory:
        db = inventory._db
        db.executemany(
            "INSERT INTO hosts (host, port, first_seen) VALUES (?, ?, ?)",
            [(GATEWAY, port, AT) for port in range(10000, 10300)],
        )
        known = {
            int(row["port"]): int(row["id"])
            for row in db.execute("SELECT id, port FROM hosts WHERE host = ?", (GATEWAY,))
        }
        counting = CountingRows(db)
        # When a batch of two known ports and a new one of that name is given its host ids
        items = [SimpleNamespace(target=Target(GATEWAY, port), at=AT) for port in (10005, 10007)]
        items.append(SimpleNamespace(target=Target(GATEWAY, 20000), at=AT))
        ids, new = recording._host_ids(counting, items)  # type: ignore[arg-type]
        added = db.execute(
            "SELECT id FROM hosts WHERE host = ? AND port = ?", (GATEWAY, 20000)
        ).fetchone()
    # Then the known ports keep their ids, the new one is added, and only those three rows
    # were read (the two known, then the one just added), not the name's 300 others
    assert ids[(GATEWAY, 10005)] == known[10005]
    assert ids[(GATEWAY, 10007)] == known[10007]
    assert ids[(GATEWAY, 20000)] == int(added["id"])
    assert new == {int(added["id"])}
    assert counting.rows == 3
