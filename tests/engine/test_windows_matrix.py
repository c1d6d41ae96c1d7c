"""The scenario matrix: ``diagnose --json`` against the lab, for each case, gives the first
and later connections' waits that WINDOWS.md's rules give.

The expected figures are worked out here, from the text of WINDOWS.md, not from
rdptrust's model: a black-holed URL is Windows' full time-out (our own observation is
cut at ``--fetch-timeout`` 0.5 s), a fast failure or quick answer costs about nothing,
a slow answer its delay. Loopback answers on a loaded machine take up to a few hundred
milliseconds each, hence the tolerance.

- §2: a chain whose root is untrusted syncs the trusted list (``authrootseq.txt``
  first: when it gets no answer the cabinet is not fetched); every chain syncs the
  disallowed list; Windows 10 also syncs the pin rules; Method 2 switches the trusted
  list only; ``EnableDisallowedCertAutoUpdate`` the disallowed list (8.1 and later), on
  Windows 7 Method 2 is the whole switch; nothing is synced while the lists are fresh.
- §2 (unverified, the default setting): a blocked list fetch waits 15 s.
- §3: revocation per URL 15 s each, no cap; accumulative: each URL half the remaining
  20 s. Both regimes by default: the low figure is the accumulative one.
- §4 / ee619754: revocation top down (the intermediate's CRL first, then the host's
  OCSP, then its CRL), stopping per certificate at the first answer.
- §5: an answered retrieval or a synced list is cached: later connections pay only
  what failed.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fixtures.cli import no_pins
from fixtures.cli import run_rdptrust as rdptrust
from fixtures.documents import assert_valid
from fixtures.lab import LabFactory
from rdptrust.pki.pinning import KnownHosts, pin_from_certificate

URL_S = 15.0  # WINDOWS.md §3: dwUrlRetrievalTimeout, 15 000 ms
BUDGET_S = 20.0  # WINDOWS.md §3: ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds
REFUSED_S = 2.0  # WINDOWS.md §6: a refused connect costs about 2 s per address (libuv PR 2896)
CTL_S = 15.0  # WINDOWS.md §2: about 15 s per blocked list fetch (unverified: a setting)
FETCH_TIMEOUT = "0.5"
SLOW_S = 2.0  # a slow answer: within the longer observation window slow rows get
SLOW_FETCH_TIMEOUT = "4"


def per_url(dead: int) -> float:
    """ "15 seconds multiplied by the number of URLs in the chain" (§3)."""
    return URL_S * dead


def accumulative(dead: int) -> float:
    """ "Each URL tested will timeout after half of the remaining cumulative balance" (§3)."""
    remaining, spent = BUDGET_S, 0.0
    for _ in range(dead):
        wait = remaining / 2
        spent += wait
        remaining -= wait
    return spent


@dataclass(frozen=True)
class Row:
    """One case: the lab, the options, the rule it exercises and the expected waits
    (first low, first high, later low, later high)."""

    name: str
    rule: str
    lab: dict[str, str]
    args: tuple[str, ...]
    expected: tuple[float, float, float, float]
    trust_ca: bool = False
    pinned: bool = False
    # what quick answers and fast failures add on a loaded machine, summed as Windows
    # makes them one after another
    tolerance: float = 1.5
    fetch_timeout: str = FETCH_TIMEOUT
    codes: frozenset[str] = field(default_factory=frozenset)


def same(seconds: float) -> tuple[float, float, float, float]:
    """The same wait on every connection, in both regimes."""
    return (seconds, seconds, seconds, seconds)


BLACKHOLED_CTL = {"cert": "self-signed", "root_list": "blackhole"}
CA = {"cert": "ca"}

ROWS = (
    # -- self-signed (untrusted root), the lists black-holed: each list's first fetch waits
    Row("self-signed, lists black-holed", "ctl-trusted-list", BLACKHOLED_CTL, (), same(3 * CTL_S)),
    Row(
        "self-signed, Method 2",
        "method2-trusted-only",
        BLACKHOLED_CTL,
        ("--root-update", "off"),
        same(2 * CTL_S),  # disallowed list + pin rules stay
    ),
    Row(
        "self-signed, disallowed switch off",
        "disallowed-switch",
        BLACKHOLED_CTL,
        ("--disallowed-update", "off"),
        same(CTL_S),  # the trusted list only
    ),
    Row(
        "self-signed, Method 2 and disallowed switch off",
        "disallowed-switch",
        BLACKHOLED_CTL,
        ("--root-update", "off", "--disallowed-update", "off"),
        same(0.0),
    ),
    Row(
        "self-signed, lists not due",
        "ctl-due",
        BLACKHOLED_CTL,
        ("--ctl-due", "no"),
        same(0.0),
    ),
    Row(
        "self-signed, Windows 7",
        "disallowed-switch",
        BLACKHOLED_CTL,
        ("--client", "win7"),
        same(2 * CTL_S),  # no pin rules before Windows 10
    ),
    Row(
        "self-signed, Windows 7, Method 2",
        "disallowed-switch",
        BLACKHOLED_CTL,
        ("--client", "win7", "--root-update", "off"),
        same(0.0),  # Method 2 was the KB's whole fix on Windows 7
    ),
    Row(
        "self-signed, Windows 8.1",
        "ctl-disallowed-list",
        BLACKHOLED_CTL,
        ("--client", "win8.1"),
        same(2 * CTL_S),
    ),
    Row(
        "self-signed, Windows 8.1, Method 2",
        "method2-trusted-only",
        BLACKHOLED_CTL,
        ("--client", "win8.1", "--root-update", "off"),
        same(CTL_S),  # the disallowed list has its own switch from 8.1
    ),
    Row(
        "self-signed, lists refused",
        "tcp-refused-retry",
        {"cert": "self-signed", "root_list": "refuse"},
        (),
        # each list's sequence file is refused at its one address: about 2 s each on
        # Windows (§6), no cabinet after it (§2), at every connection (§5)
        same(3 * REFUSED_S),
    ),
    Row(
        "self-signed, lists slow but answering",
        "cache-first-connection",
        {"cert": "self-signed", "root_list": f"delay:{SLOW_S}"},
        (),
        # five fetches one after another per list: (seq + cab) x 2 + pin rules, the lists
        # side by side in the lab but added up in the model; later: synced, not due
        (5 * SLOW_S, 5 * SLOW_S, 0.0, 0.0),
        fetch_timeout=SLOW_FETCH_TIMEOUT,
    ),
    Row(
        "pinned self-signed, lists black-holed",
        "pin-as-root",
        BLACKHOLED_CTL,
        (),
        same(2 * CTL_S),  # trusted: no trusted list; the disallowed list and pin rules stay
        pinned=True,
    ),
    Row(
        "pinned self-signed, disallowed switch off",
        "pin-as-root",
        BLACKHOLED_CTL,
        ("--disallowed-update", "off"),
        same(0.0),
        pinned=True,
    ),
    # -- a CA chain the client trusts: revocation, top down
    Row("trusted CA chain, all answers", "revocation-trusted-only", CA, (), same(0.0), True),
    Row(
        "trusted CA chain, OCSP black-holed",
        "cache-first-connection",
        {"cert": "ca", "ocsp": "blackhole"},
        (),
        # the host's OCSP is dead, its CRL answers: first connection one dead URL; the CRL
        # is cached, so later connections do not ask OCSP again
        (accumulative(1), per_url(1), 0.0, 0.0),
        True,
    ),
    Row(
        "trusted CA chain, CRLs black-holed",
        "cache-failures-repeat",
        {"cert": "ca", "crl": "blackhole"},
        (),
        # the intermediate's CRL (it has no OCSP) is dead on every connection
        (accumulative(1), per_url(1), accumulative(1), per_url(1)),
        True,
    ),
    Row(
        "trusted CA chain, CRL and OCSP black-holed",
        "revocation-regime-unknown",
        {"cert": "ca", "crl": "blackhole", "ocsp": "blackhole"},
        (),
        (accumulative(3), per_url(3), accumulative(3), per_url(3)),
        True,
    ),
    Row(
        "trusted CA chain, CRLs black-holed, per-URL regime",
        "revocation-per-url",
        {"cert": "ca", "crl": "blackhole"},
        ("--revocation-timeouts", "per-url"),
        same(per_url(1)),
        True,
    ),
    Row(
        "trusted CA chain, CRL and OCSP black-holed, accumulative regime",
        "revocation-accumulative",
        {"cert": "ca", "crl": "blackhole", "ocsp": "blackhole"},
        ("--revocation-timeouts", "accumulative"),
        same(accumulative(3)),
        True,
    ),
    Row(
        "trusted CA chain, OCSP black-holed, CRL first",
        "crl-before-ocsp",
        {"cert": "ca", "ocsp": "blackhole"},
        ("--crl-first", "on"),
        same(0.0),  # the CRL answers, OCSP is never asked
        True,
    ),
    Row(
        "trusted CA chain, CRL black-holed, CRL first",
        "crl-before-ocsp",
        {"cert": "ca", "crl": "blackhole"},
        ("--crl-first", "on"),
        # §4: the intermediate's CRL (no OCSP URL), then the host's CRL before its OCSP;
        # §5: the OCSP answer is cached, so later connections wait on the intermediate's only
        (accumulative(2), per_url(2), accumulative(1), per_url(1)),
        True,
    ),
    Row(
        "trusted CA chain stapling a current answer, OCSP and CRL black-holed",
        "stapled-ocsp",
        {"cert": "ca", "tls_mode": "stapled", "ocsp": "blackhole", "crl": "blackhole"},
        (),
        # §4: the staple comes first and settles the host certificate; the intermediate's
        # CRL still waits
        (accumulative(1), per_url(1), accumulative(1), per_url(1)),
        True,
    ),
    Row(
        "trusted CA chain stapling a stale answer, OCSP and CRL black-holed",
        "stapled-ocsp",
        {"cert": "ca", "tls_mode": "stapled-stale", "ocsp": "blackhole", "crl": "blackhole"},
        (),
        # an out-of-date staple is no answer: the intermediate's CRL, the host's OCSP, CRL
        (accumulative(3), per_url(3), accumulative(3), per_url(3)),
        True,
    ),
    Row(
        "trusted CA chain, CRLs refused",
        "tcp-refused-retry",
        {"cert": "ca", "crl": "refuse"},
        (),
        # the counted CRL is refused at its one address (127.0.0.1): Windows retries for
        # about 2 s (WINDOWS.md §6), at every connection (failures are not cached, §5)
        same(REFUSED_S),
        True,
    ),
    # -- through a WinHTTP proxy that refuses (``netsh winhttp set proxy`` to a dead port)
    Row(
        "trusted CA chain through a refusing proxy",
        "tcp-refused-retry",
        CA,
        ("--proxy", "http://127.0.0.1:{closed}"),
        # every retrieval is refused at the proxy's one address, about 2 s each (§6): the
        # disallowed list's and pin rules' sequence files (no cabinet after a failed
        # sequence file, §2), the intermediate's CRL, the host's OCSP and its CRL (§4:
        # top down, each certificate's methods in turn until one answers); failures are
        # not cached (§5)
        same(5 * REFUSED_S),
        True,
    ),
    # -- AD CS-style LDAP CRL distribution points (the host certificate's only CDP, no OCSP)
    Row(
        "trusted CA chain, LDAP CRL black-holed",
        "ldap-url",
        {"cert": "ca", "ldap": "blackhole"},
        (),
        # one dead revocation URL (the intermediate's HTTP CRL answers), every connection
        (accumulative(1), per_url(1), accumulative(1), per_url(1)),
        True,
    ),
    Row(
        "trusted CA chain, LDAP CRL refused",
        "tcp-refused-retry",
        {"cert": "ca", "ldap": "refuse"},
        (),
        # refused at its one address: about 2 s on Windows (§6), at every connection (§5)
        same(REFUSED_S),
        True,
    ),
    Row(
        "trusted CA chain, ldap:/// CRL without --domain",
        "ldap-dc-locate",
        {"cert": "ca", "ldap": "dc"},
        (),
        # the client must locate a DC first; off the domain network: a dead URL (assumed)
        (accumulative(1), per_url(1), accumulative(1), per_url(1)),
        True,
    ),
    Row(
        "trusted CA chain, OCSP slow",
        "cache-first-connection",
        {"cert": "ca", "ocsp": f"delay:{SLOW_S}"},
        (),
        (SLOW_S, SLOW_S, 0.0, 0.0),
        True,
        fetch_timeout=SLOW_FETCH_TIMEOUT,
    ),
    Row(
        "trusted CA chain, lists black-holed",
        "ctl-disallowed-list",
        {"cert": "ca", "root_list": "blackhole"},
        (),
        same(2 * CTL_S),  # trusted chains sync the disallowed list and pin rules too
        True,
    ),
    Row(
        "untrusted CA chain, lists and CRLs black-holed",
        "revocation-trusted-only",
        {"cert": "ca", "root_list": "blackhole", "crl": "blackhole"},
        (),
        same(3 * CTL_S),  # no revocation for an untrusted chain
    ),
    Row(
        "trusted CA, leaf only, issuer slow over AIA",
        "aia-untrusted-path",
        {"cert": "ca", "omit_intermediate": "yes", "aia": f"delay:{SLOW_S}"},
        (),
        # the issuer is cached after the first connection (§5)
        (SLOW_S, SLOW_S, 0.0, 0.0),
        True,
        fetch_timeout=SLOW_FETCH_TIMEOUT,
    ),
    Row(
        "trusted CA, leaf only, AIA black-holed",
        "aia-untrusted-path",
        {"cert": "ca", "omit_intermediate": "yes", "aia": "blackhole"},
        (),
        # no issuer: the path stays untrusted (the trusted list answers quickly); the dead
        # AIA URL costs every connection
        same(URL_S),
        True,
    ),
    Row(
        "revoked host certificate",
        "revocation-trusted-only",
        CA,
        (),
        same(0.0),
        True,
        codes=frozenset({"revoked"}),
    ),
    Row(
        "pinned CA-issued host, revocation black-holed",
        "pin-as-root",
        {"cert": "ca", "crl": "blackhole", "ocsp": "blackhole"},
        (),
        # pinned: revocation is checked as for a Root store anchor; the path ends at the
        # intermediate the host sent, so only the host certificate: OCSP and CRL dead
        (accumulative(2), per_url(2), accumulative(2), per_url(2)),
        pinned=True,
    ),
)


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_matrix_is_large_enough_and_names_real_rules() -> None:
    from rdptrust.pki.rules import BY_ID

    assert len(ROWS) >= 20
    assert {r.rule for r in ROWS} <= set(BY_ID)


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
async def test_diagnose_matches_windows_md(
    row: Row, lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given the lab in the row's modes
    lab_options: dict[str, object] = dict(row.lab)
    if "omit_intermediate" in lab_options:
        lab_options["omit_intermediate"] = True
    lab = await lab_factory(**lab_options)
    known = no_pins(tmp_path / "known_hosts.json")
    if row.pinned:
        store = KnownHosts.load(known)
        store.add(pin_from_certificate(lab.target, lab.credentials.leaf))
        store.save()
    if "revoked" in row.codes:
        assert lab.ca is not None
        lab.ca.revoke(lab.credentials.leaf.serial_number)
    trust = ("--ca-file", str(lab.ca_cert_path)) if row.trust_ca else ()
    # When diagnose judges it
    code, out, err = await rdptrust(
        "diagnose",
        str(lab.target),
        "--json",
        "--no-system-trust",
        "--fetch-timeout",
        row.fetch_timeout,
        "--root-list-url",
        lab.root_list_url,
        "--known-hosts",
        str(known),
        *trust,
        *(arg.replace("{closed}", str(_closed_port())) for arg in row.args),
    )
    assert code in (0, 1, 2), err
    document = json.loads(out)
    assert_valid(document)
    # Then the first and later connections' waits are WINDOWS.md's
    prediction = document["prediction"]
    got = (
        prediction["first_connection"]["low_s"],
        prediction["first_connection"]["high_s"],
        prediction["later_connections"]["low_s"],
        prediction["later_connections"]["high_s"],
    )
    assert got == pytest.approx(row.expected, abs=row.tolerance), (row.rule, got)
    assert document["predicted_stall_s"] == prediction["first_connection"]["high_s"]
    # and the rule exercised is among those the prediction rests on, with its status
    basis = {b["rule"]: b["status"] for b in prediction["basis"]}
    assert row.rule in basis, (row.rule, basis)
    assert set(basis.values()) <= {"documented", "observed", "assumed"}
    # and what is not measured is said
    assert any("CredSSP" in text for text in prediction["not_measured"])
    if row.pinned:
        assert any("Method 1 deployed" in a for a in prediction["assumptions"])
    assert row.codes <= {p["code"] for p in document["problems"]}
