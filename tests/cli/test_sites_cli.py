"""One lab host, two sites: it stalls from the site whose root list is black-holed.

Each site has its own PKI responders (its own lab): from branch-2 the Windows Update
root list does not answer, from hq it does. The host's two views are kept apart in
``hosts``, ``history`` and the HTML report, on both backends.
"""

from __future__ import annotations

import json
from pathlib import Path

from fixtures.cli import run_rdptrust
from fixtures.documents import assert_valid
from fixtures.lab import LabFactory


async def test_a_host_that_stalls_from_one_site_only(
    inventory_db: str, tmp_path: Path, lab_factory: LabFactory
) -> None:
    host = await lab_factory(cert="self-signed", root_list="blackhole")
    hq_pki = await lab_factory(cert="self-signed")
    target = str(host.target)
    common = ("--db", inventory_db, "--diagnose", "--fetch-timeout", "1", "--timeout", "3")
    # Given the host scanned from branch-2 (root list black-holed) and from hq
    for site, root_list in (("branch-2", host.root_list_url), ("hq", hq_pki.root_list_url)):
        code, _, err = await run_rdptrust(
            "scan", target, *common, "--site", site, "--root-list-url", root_list
        )
        assert code == 0, err
    # Then hosts keeps one view per site, the stall only from branch-2
    code, out, err = await run_rdptrust("hosts", "--db", inventory_db, "--json")
    assert code == 0, err
    document = json.loads(out)
    assert_valid(document)
    views = {h["latest"]["site"]: h["latest"] for h in document["hosts"]}
    assert set(views) == {"branch-2", "hq"}
    assert views["branch-2"]["predicted_stall_s"] >= 14
    assert views["hq"]["predicted_stall_s"] < 1
    code, out, err = await run_rdptrust("hosts", "--db", inventory_db)
    assert code == 0, err
    assert "Seen differently from different sites:" in out
    assert f"{target}: stalls" in out
    assert "s from branch-2, no stall from hq" in out
    code, out, err = await run_rdptrust("hosts", "--db", inventory_db, "--site", "hq", "--json")
    assert [h["latest"]["site"] for h in json.loads(out)["hosts"]] == ["hq"]
    # And history holds both sites' observations, or one site's with --site
    code, out, err = await run_rdptrust("history", target, "--db", inventory_db, "--json")
    assert code == 0, err
    history = json.loads(out)
    assert_valid(history)
    assert [o["site"] for o in history["observations"]] == ["branch-2", "hq"]
    assert [e["site"] for e in history["events"]] == ["branch-2", "hq"]
    code, out, err = await run_rdptrust(
        "history", target, "--db", inventory_db, "--site", "hq", "--json"
    )
    assert [o["site"] for o in json.loads(out)["observations"]] == ["hq"]
    # And the HTML report compares the sites for the host
    html = tmp_path / "report.html"
    code, _, err = await run_rdptrust("report", "--db", inventory_db, "--html", str(html))
    assert code == 0, err
    page = html.read_text(encoding="utf-8")
    assert "Sites compared" in page
    assert "s from <b>branch-2</b>, no stall from <b>hq</b>" in page
    # And a bad site name is a usage error, with what is allowed
    code, _, err = await run_rdptrust("scan", target, "--db", inventory_db, "--site", "a b")
    assert code == 64
    assert "not a site name" in err
