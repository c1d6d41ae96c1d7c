"""`rdptrust diagnose --json` on the lab's LDAP cases (rdptrust lab --ldap ...).

The host certificate is issued as AD CS issues it: its CRL distribution point and
caIssuers are LDAP URLs (and no OCSP), served by a real slapd, refused, black-holed, or
written as ``ldap:///DN`` with the domain's DCs listed by a real dnsmasq. The expected
waits are computed here from WINDOWS.md's rules, not from rdptrust's model:

- §3: a URL with no answer waits 15 s without the accumulative flag; with it, half of
  what is left of the 20 s budget after the revocation URLs before it;
- §1/§4: revocation top down, so the intermediate's (HTTP) CRL comes before the leaf's;
- §5: an answer is cached for later connections, a failure is not;
- §4 (``ldap-dc-locate``, assumed): ``ldap:///`` without --domain counts as a dead URL.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import no_pins
from fixtures.cli import run_rdptrust as rdptrust
from fixtures.documents import assert_valid
from fixtures.lab import LabFactory
from rdptrust.lab.ldap import LdapMode
from rdptrust.lab.runner import Lab
from rdptrust.report.lab import lab_document

PER_URL_S = 15.0
BUDGET_S = 20.0


def _need(*programs: str) -> None:
    for name in programs:
        if shutil.which(name) is None and shutil.which(name, path="/usr/sbin:/sbin") is None:
            pytest.skip(f"{name} is not installed (Debian package {name}; .ci/run installs it)")


async def _diagnose(lab: Lab, tmp_path: Path, *extra: str) -> dict[str, Any]:
    store = no_pins(tmp_path / "known_hosts.json")
    assert lab.ca_cert_path is not None
    code, out, err = await rdptrust(
        "diagnose",
        str(lab.target),
        "--json",
        "--fetch-timeout",
        "1",
        "--ca-file",
        str(lab.ca_cert_path),
        "--no-system-trust",
        "--no-client-state",
        "--known-hosts",
        str(store),
        "--root-list-url",
        lab.root_list_url,
        "--ctl-due",
        "no",
        *extra,
    )
    assert code in (0, 1, 2), err
    doc = json.loads(out)
    assert_valid(doc)
    return doc


def _observed_s(doc: dict[str, Any], url_part: str) -> float:
    (made,) = [r for r in doc["retrievals"] if url_part in r["url"] and r["counted"]]
    return float(made["elapsed_ms"]) / 1000.0


def _dead_leaf(before_s: float) -> tuple[float, float]:
    """(accumulative, per-URL) seconds of a dead leaf CRL after *before_s* of revocation."""
    return min((BUDGET_S - before_s) / 2.0, PER_URL_S), PER_URL_S


def _span(doc: dict[str, Any], which: str) -> tuple[float, float]:
    wait = doc["prediction"][which]
    return wait["low_s"], wait["high_s"]


async def test_slapd_served_crl_costs_what_was_observed(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    _need("slapd", "slapadd")
    lab = await lab_factory(cert="ca", ldap=LdapMode.OK)
    doc = await _diagnose(lab, tmp_path)
    (leaf,) = [r for r in doc["retrievals"] if r["url"].startswith("ldap://")]
    assert leaf["outcome"] == "ok"
    assert leaf["revocation"] == "good"
    observed = _observed_s(doc, "/crl/root.crl") + _observed_s(doc, "ldap://")
    low, high = _span(doc, "first_connection")
    assert low == high == pytest.approx(observed, abs=0.002)
    assert _span(doc, "later_connections") == (0, 0)  # both answers cached (§5)
    assert "ldap-url" in {b["rule"] for b in doc["prediction"]["basis"]}


async def test_refused_ldap_is_charged_as_windows_pays(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory(cert="ca", ldap=LdapMode.REFUSE)
    doc = await _diagnose(lab, tmp_path)
    (leaf,) = [r for r in doc["retrievals"] if r["url"].startswith("ldap://")]
    assert leaf["outcome"] == "refused"
    # the refusal is fast here; Windows retries a refused connect for about 2 s per
    # address (WINDOWS.md §6): the one address of 127.0.0.1 costs 2 s
    assert [c["outcome"] for c in leaf["connects"]] == ["refused"]
    first = _observed_s(doc, "/crl/root.crl") + 2.0
    assert _span(doc, "first_connection")[1] == pytest.approx(first, abs=0.002)
    # the failure is not cached: later connections pay the leaf's CRL again (§5)
    assert _span(doc, "later_connections")[1] == pytest.approx(2.0, abs=0.002)
    (cause,) = [c for c in doc["causes"] if c["url"].startswith("ldap:")]
    assert cause["rule"] == "tcp-refused-retry"


@pytest.mark.parametrize(
    ("mode", "extra", "rule", "status"),
    [
        (LdapMode.BLACKHOLE, (), "revocation-regime-unknown", "assumed"),
        (LdapMode.DC, (), "ldap-dc-locate", "assumed"),
    ],
)
async def test_dead_or_unlocated_ldap_waits_the_time_out(
    lab_factory: LabFactory,
    tmp_path: Path,
    mode: LdapMode,
    extra: tuple[str, ...],
    rule: str,
    status: str,
) -> None:
    if mode is LdapMode.DC:
        _need("slapd", "slapadd", "dnsmasq")
    lab = await lab_factory(cert="ca", ldap=mode)
    doc = await _diagnose(lab, tmp_path, *extra)
    before = _observed_s(doc, "/crl/root.crl")
    accumulative, per_url = _dead_leaf(before)
    low, high = _span(doc, "first_connection")
    assert low == pytest.approx(before + accumulative, abs=0.002)
    assert high == pytest.approx(before + per_url, abs=0.002)
    # later: the intermediate's answer is cached, the leaf's failure is not
    later_acc, later_per = _dead_leaf(0.0)
    assert _span(doc, "later_connections") == (later_acc, later_per)
    (cause,) = [c for c in doc["causes"] if c["url"].startswith("ldap:")]
    assert cause["rule"] == rule
    assert cause["rests_on"] == status
    assert cause["every_connection"] is True
    assert doc["verdict"] == "critical"
    network = [c["command"] for f in doc["fixes"] for c in f["commands"] if c["where"] == "network"]
    assert any("allow LDAP to" in n for n in network), network


async def test_domain_measures_the_dcs_from_dnsmasq(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    _need("slapd", "slapadd", "dnsmasq")
    lab = await lab_factory(cert="ca", ldap=LdapMode.DC)
    info = lab.info().ldap
    assert info is not None
    assert info.domain is not None
    assert info.dns_server is not None
    assert_valid(lab_document(lab.info()))
    doc = await _diagnose(lab, tmp_path, "--domain", info.domain, "--dns-server", info.dns_server)
    assert doc["settings"]["domain"] == info.domain
    (leaf,) = [r for r in doc["retrievals"] if r["url"].startswith("ldap:///")]
    assert leaf["outcome"] == "ok"
    assert leaf["revocation"] == "good"
    observed = _observed_s(doc, "/crl/root.crl") + _observed_s(doc, "ldap:///")
    assert _span(doc, "first_connection")[1] == pytest.approx(observed, abs=0.002)
    assert _span(doc, "later_connections") == (0, 0)
    assert all(c["rule"] != "ldap-dc-locate" for c in doc["causes"])


@pytest.mark.parametrize("mode", [LdapMode.OK, LdapMode.BLACKHOLE])
async def test_issuer_over_ldap_aia(
    lab_factory: LabFactory, tmp_path: Path, mode: LdapMode
) -> None:
    if mode is LdapMode.OK:
        _need("slapd", "slapadd")
    lab = await lab_factory(cert="ca", ldap=mode, omit_intermediate=True)
    doc = await _diagnose(lab, tmp_path)
    (aia,) = [r for r in doc["retrievals"] if r["purpose"] == "aia"]
    assert aia["url"].startswith("ldap://")
    if mode is LdapMode.OK:
        # the issuer came over LDAP: the path is trusted and its revocation checked
        assert aia["outcome"] == "ok"
        assert doc["trust"]["trusted"] is True
        assert _span(doc, "later_connections") == (0, 0)
    else:
        # §3 url-timeout: the issuer never comes, 15 s in both regimes and every time (§5)
        assert aia["outcome"] == "timeout"
        assert _span(doc, "first_connection") == (PER_URL_S, PER_URL_S)
        assert _span(doc, "later_connections") == (PER_URL_S, PER_URL_S)


async def test_check_takes_the_domain_too(lab_factory: LabFactory, tmp_path: Path) -> None:
    # the same setting in `check --diagnose`: without --domain the ldap:/// CRL is an
    # assumed dead URL (15 s, over the default --max-stall); with it, measured and fast
    _need("slapd", "slapadd", "dnsmasq")
    lab = await lab_factory(cert="ca", ldap=LdapMode.DC)
    info = lab.info().ldap
    assert info is not None
    assert info.domain is not None
    assert info.dns_server is not None
    assert lab.ca_cert_path is not None
    store = no_pins(tmp_path / "known_hosts.json")
    common = (
        "check",
        str(lab.target),
        "--diagnose",
        "--json",
        "--fetch-timeout",
        "1",
        "--ca-file",
        str(lab.ca_cert_path),
        "--no-system-trust",
        "--known-hosts",
        str(store),
        "--root-list-url",
        lab.root_list_url,
        "--ctl-due",
        "no",
    )
    code, out, err = await rdptrust(*common)
    blind = json.loads(out)
    assert_valid(blind)
    assert code == 2, err
    # the per-URL regime's 15 s for the leaf plus the intermediate's fast HTTP CRL
    assert PER_URL_S <= blind["predicted_stall_s"] < PER_URL_S + 1.0
    code, out, err = await rdptrust(
        *common, "--domain", info.domain, "--dns-server", info.dns_server
    )
    measured = json.loads(out)
    assert_valid(measured)
    assert measured["predicted_stall_s"] < 1.0, err
