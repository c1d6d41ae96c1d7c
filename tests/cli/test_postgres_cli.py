"""Every inventory command on a real PostgreSQL server, as a user runs them.

The server is the tests' own on loopback (tests/fixtures/postgres.py); its password
comes from ``PGPASSFILE`` as libpq reads it, or from a URL in one test, which checks
that the password is never printed nor stored.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path

import pytest

from fixtures.cli import run_rdptrust
from fixtures.documents import assert_valid
from fixtures.lab import LabFactory


async def test_scan_hosts_history_and_report_on_postgresql(
    postgres_db: str, tmp_path: Path, lab_factory: LabFactory
) -> None:
    lab = await lab_factory(count=6)
    env = {**os.environ, "RDPTRUST_DB": postgres_db}
    # Given a scan into a PostgreSQL inventory named by RDPTRUST_DB
    code, out, err = await run_rdptrust("scan", *map(str, lab.targets), "--jsonl", env=env)
    assert code == 0, err
    assert len(out.splitlines()) == 6
    # Then hosts, history and report read it back, as from an SQLite file
    code, out, err = await run_rdptrust("hosts", "--json", env=env)
    assert code == 0, err
    document = json.loads(out)
    assert_valid(document)
    assert sorted(h["target"] for h in document["hosts"]) == sorted(map(str, lab.targets))
    assert {h["latest"]["certificate"]["sha256"] for h in document["hosts"]} == {
        lab.certificate_sha256
    }
    code, out, err = await run_rdptrust("history", str(lab.targets[0]), "--json", env=env)
    assert code == 0, err
    assert [e["kind"] for e in json.loads(out)["events"]] == ["first-seen"]
    html = tmp_path / "fleet.html"
    code, _, err = await run_rdptrust("report", "--html", str(html), env=env)
    assert code == 0, err
    assert str(lab.targets[0]).split(":")[0] in html.read_text(encoding="utf-8")
    # And a second scan of the same hosts is a second observation of each
    code, _, err = await run_rdptrust("scan", *map(str, lab.targets), env=env)
    assert code == 0, err
    code, out, err = await run_rdptrust("hosts", "--json", env=env)
    assert {h["observation_count"] for h in json.loads(out)["hosts"]} == {2}


async def test_a_password_is_neither_printed_nor_stored(
    postgres_db: str, lab_factory: LabFactory
) -> None:
    import psycopg

    secret = "s3cret-Pw-9f1c"
    role = "rdptrust_pw_" + urllib.parse.urlsplit(postgres_db).path.rsplit("_", 1)[-1][:8]
    database = urllib.parse.urlsplit(postgres_db).path.lstrip("/")
    with psycopg.connect(postgres_db, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'")
        admin.execute(f'GRANT ALL ON DATABASE "{database}" TO {role}')
        admin.execute(f"GRANT ALL ON SCHEMA public TO {role}")
    try:
        parts = urllib.parse.urlsplit(postgres_db)
        url = urllib.parse.urlunsplit(
            parts._replace(netloc=f"{role}:{secret}@{parts.hostname}:{parts.port}")
        )
        env = {k: v for k, v in os.environ.items() if k != "PGPASSFILE"}
        lab = await lab_factory(count=2)
        # Given a scan whose --db URL carries the password
        outputs = []
        for args in (
            ("scan", "--db", url, *map(str, lab.targets)),
            ("scan", "--db", url, *map(str, lab.targets), "--jsonl"),
            ("hosts", "--db", url),
            ("history", "--db", url, str(lab.targets[0])),
        ):
            code, out, err = await run_rdptrust(*args, env=env)
            assert code == 0, err
            outputs.append(out + err)
        # When the password is wrong, one line says so, without the password tried
        wrong = url.replace(secret, secret + "-wrong")
        code, out, err = await run_rdptrust("hosts", "--db", wrong, env=env)
        assert code == 69, err
        assert len(err.strip().splitlines()) == 1
        assert "Traceback" not in err
        assert "password authentication failed" in err
        outputs.append(out + err)
        # Then no output holds the password, nor does any row of the inventory
        for text in outputs:
            assert secret not in text
        with psycopg.connect(postgres_db) as db:
            tables = [
                r[0]
                for r in db.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                )
            ]
            assert "scans" in tables
            for table in tables:
                for row in db.execute(f"SELECT * FROM {table}"):
                    assert secret not in repr(row)
    finally:
        with psycopg.connect(postgres_db, autocommit=True) as admin:
            admin.execute(f"REASSIGN OWNED BY {role} TO CURRENT_USER")
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


async def test_a_database_that_is_not_an_inventory_is_refused_by_readers(postgres_db: str) -> None:
    code, out, err = await run_rdptrust("hosts", "--db", postgres_db)
    assert code != 0
    assert "not an rdptrust inventory" in err
    assert len(err.strip().splitlines()) == 1
    assert out == ""


async def test_an_unreachable_server_is_one_line_and_exit_69(tmp_path: Path) -> None:
    # a loopback port nothing listens on
    url = "postgresql://nobody:pw-not-shown@127.0.0.1:1/none"
    code, _, err = await run_rdptrust("scan", "--db", url, "127.0.0.1:1")
    assert code == 69, err
    assert len(err.strip().splitlines()) == 1
    assert "pw-not-shown" not in err
    assert "postgresql://nobody@127.0.0.1:1/none" in err


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql://u@h:5432/db"),
        ("postgresql://u@h/db?password=p&sslmode=require", "postgresql://u@h/db?sslmode=require"),
        ("postgres://h/db", "postgres://h/db"),
        ("postgresql://u:p%40x@[::1]:5/db", "postgresql://u@[::1]:5/db"),
    ],
)
def test_the_location_shown_has_no_password(url: str, shown: str) -> None:
    from rdptrust.store.postgres import display_location

    assert display_location(url) == shown
