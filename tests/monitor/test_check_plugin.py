"""`rdptrust check` as a monitoring plugin: states, exit codes and perfdata over loopback."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from monitor_hosts import RDPTRUST, expiring_in, subprocess_env

from fixtures.cli import no_pins, run_command
from fixtures.lab import LabFactory
from rdptrust.engine import AssessOptions, assess
from rdptrust.lab.certs import HostCredentials, LabCa, windows_self_signed
from rdptrust.lab.runner import Lab
from rdptrust.monitor.check import PerfDatum, PluginState, Thresholds, evaluate
from rdptrust.pki.pinning import KnownHosts, pin_from_certificate
from rdptrust.pki.trust import load_trust_anchors

HostFactory = Callable[[HostCredentials], Awaitable[Lab]]

LINE = re.compile(r"^RDPTRUST (OK|WARNING|CRITICAL|UNKNOWN) - ([^|\n]+?)(?: \| (.*))?$")
# 'label'=value[UOM];[warn];[crit];[min];[max] (Monitoring Plugins Development Guidelines)
PERF = re.compile(
    r"^(?P<label>[^'= ]+|'[^']+')=(?P<value>-?[0-9.]+)(?P<uom>[a-zA-Z%]*)"
    r"(?:;(?P<warn>[^;]*))?(?:;(?P<crit>[^;]*))?(?:;(?P<min>[^;]*))?(?:;(?P<max>[^;]*))?$"
)


async def run_check(*args: str, timeout: float = 20.0) -> tuple[int, str, str]:
    code, out, err = await run_command(
        [*RDPTRUST, "check", *args], env=subprocess_env(), timeout=timeout
    )
    if code not in (0, 1, 2, 3):
        assert not out, f"exit {code} with output {out!r}"
    assert "Traceback" not in err, err
    return code, out, err


def parse_line(stdout: str) -> tuple[str, str, dict[str, re.Match[str]]]:
    lines = stdout.splitlines()
    assert len(lines) == 1, f"expected one line, got {stdout!r}"
    match = LINE.match(lines[0])
    assert match, lines[0]
    perf: dict[str, re.Match[str]] = {}
    for item in (match.group(3) or "").split():
        parsed = PERF.match(item)
        assert parsed, item
        perf[parsed.group("label").strip("'")] = parsed
    return match.group(1), match.group(2), perf


async def test_fresh_ca_issued_trusted_is_ok(
    rdp_host: HostFactory, ca_credentials: HostCredentials, ca_file: Path, tmp_path: Path
) -> None:
    host = await rdp_host(ca_credentials)
    code, out, err = await run_check(
        str(host.target),
        "--ca-file",
        str(ca_file),
        "--known-hosts",
        str(no_pins(tmp_path / "kh.json")),
    )
    state, summary, perf = parse_line(out)
    assert (code, state) == (0, "OK"), out + err
    assert "trusted" in summary
    assert "CN=WIN-LAB01" in summary
    days = int(perf["days_left"].group("value"))
    expected = min(c.not_valid_after_utc for c in ca_credentials.chain)
    assert abs(days - (expected - ca_credentials.leaf.not_valid_before_utc).days) <= 1
    assert perf["days_left"].group("uom") == "d"
    assert (perf["days_left"].group("warn"), perf["days_left"].group("crit")) == ("30:", "7:")
    assert perf["time"].group("uom") == "s"
    assert float(perf["time"].group("value")) > 0
    assert float(perf["tls_handshake"].group("value")) > 0
    assert err == ""


@pytest.mark.parametrize(
    ("days", "extra", "state", "code"),
    [
        (10, (), "WARNING", 1),
        (10, ("--warn-days", "30", "--crit-days", "14"), "CRITICAL", 2),
        (10, ("--warn-days", "9", "--crit-days", "5"), "OK", 0),
        (3, (), "CRITICAL", 2),
    ],
)
async def test_expiring_within_warn_and_crit_days(
    rdp_host: HostFactory,
    lab_ca: LabCa,
    ca_file: Path,
    tmp_path: Path,
    days: int,
    extra: tuple[str, ...],
    state: str,
    code: int,
) -> None:
    host = await rdp_host(expiring_in(days, lab_ca))
    rc, out, _ = await run_check(
        str(host.target),
        "--ca-file",
        str(ca_file),
        "--known-hosts",
        str(no_pins(tmp_path / "kh.json")),
        *extra,
    )
    got, summary, perf = parse_line(out)
    assert (rc, got) == (code, state), out
    assert perf["days_left"].group("value") == str(days)
    if state != "OK":
        assert f"in {days} days" in summary


async def test_expired_is_critical(
    rdp_host: HostFactory, expired_credentials: HostCredentials, ca_file: Path, tmp_path: Path
) -> None:
    host = await rdp_host(expired_credentials)
    rc, out, _ = await run_check(
        str(host.target),
        "--ca-file",
        str(ca_file),
        "--known-hosts",
        str(no_pins(tmp_path / "kh.json")),
    )
    state, summary, perf = parse_line(out)
    assert (rc, state) == (2, "CRITICAL")
    assert "expired" in summary
    assert int(perf["days_left"].group("value")) < 0


async def test_self_signed_not_pinned_is_warning_and_pinned_is_ok(
    rdp_host: HostFactory, tmp_path: Path
) -> None:
    creds = windows_self_signed("127.0.0.1")
    host = await rdp_host(creds)
    store = no_pins(tmp_path / "kh.json")
    rc, out, _ = await run_check(str(host.target), "--known-hosts", str(store))
    state, summary, _ = parse_line(out)
    assert (rc, state) == (1, "WARNING")
    assert "self-signed, not pinned" in summary

    # When the certificate is pinned, the same host is OK and says so.
    known = KnownHosts.load(store)
    known.add(pin_from_certificate(host.target, creds.leaf))
    known.save()
    rc, out, _ = await run_check(str(host.target), "--known-hosts", str(store))
    state, summary, _ = parse_line(out)
    assert (rc, state) == (0, "OK"), out
    assert "pinned" in summary


async def test_changed_pin_is_critical(rdp_host: HostFactory, tmp_path: Path) -> None:
    old, new = windows_self_signed("127.0.0.1"), windows_self_signed("127.0.0.1")
    host = await rdp_host(new)
    store = tmp_path / "kh.json"
    known = KnownHosts.load(store)
    known.add(pin_from_certificate(host.target, old.leaf))
    known.save()
    rc, out, _ = await run_check(str(host.target), "--known-hosts", str(store))
    state, summary, _ = parse_line(out)
    assert (rc, state) == (2, "CRITICAL")
    assert "changed since it was pinned" in summary


async def test_untrusted_ca_is_warning(
    rdp_host: HostFactory, lab_ca: LabCa, ca_credentials: HostCredentials, tmp_path: Path
) -> None:
    # As the lab serves it (leaf and intermediate), the root is nowhere local.
    host = await rdp_host(ca_credentials)
    store = str(no_pins(tmp_path / "kh.json"))
    rc, out, _ = await run_check(str(host.target), "--no-system-trust", "--known-hosts", store)
    state, summary, _ = parse_line(out)
    assert (rc, state) == (1, "WARNING")
    assert "incomplete chain" in summary

    # With the root sent too, the path is complete and ends in an untrusted root.
    full = HostCredentials(
        chain=(*ca_credentials.chain, lab_ca.root),
        key=ca_credentials.key,
        sha256=ca_credentials.sha256,
    )
    host = await rdp_host(full)
    rc, out, _ = await run_check(str(host.target), "--no-system-trust", "--known-hosts", store)
    state, summary, _ = parse_line(out)
    assert (rc, state) == (1, "WARNING")
    assert "untrusted root" in summary
    assert "self-signed" not in summary


async def test_unreachable_is_unknown(refused_port: int, tmp_path: Path) -> None:
    rc, out, _ = await run_check(
        f"127.0.0.1:{refused_port}", "--known-hosts", str(no_pins(tmp_path / "kh.json"))
    )
    state, summary, perf = parse_line(out)
    assert (rc, state) == (3, "UNKNOWN")
    assert "refused" in summary
    assert "days_left" not in perf
    assert "time" in perf


async def test_silent_host_is_unknown_within_the_timeout(silent_port: int, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    rc, out, _ = await run_check(
        f"127.0.0.1:{silent_port}",
        "--timeout",
        "0.5",
        "--known-hosts",
        str(no_pins(tmp_path / "k.json")),
    )
    assert (rc, parse_line(out)[0]) == (3, "UNKNOWN")
    assert loop.time() - start < 10


async def test_bad_arguments_exit_64_bad_target_and_ca_file_are_unknown(tmp_path: Path) -> None:
    rc, out, err = await run_check("127.0.0.1:1", "--warn-days", "5", "--crit-days", "9")
    assert rc == 64
    assert out == ""
    assert err.startswith("rdptrust: error:")
    assert "--crit-days" in err
    assert "Traceback" not in err

    # a target that is no host name is the plugin's UNKNOWN, like an unreadable CA file
    rc, out, err = await run_check("bad host:1")
    assert rc == 3
    assert parse_line(out)[0] == "UNKNOWN"
    assert "Traceback" not in err

    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("nothing here\n")
    rc, out, err = await run_check("127.0.0.1:1", "--ca-file", str(bad))
    assert rc == 3
    assert parse_line(out)[0] == "UNKNOWN"


@pytest.mark.parametrize(
    ("option", "where", "says"),
    [
        ("--client-state", "missing.json", "cannot read the client-state file"),
        ("--client-state", ".", "cannot read the client-state file"),
        ("--known-hosts", ".", "cannot read the known-hosts file"),
        ("--ca-file", ".", "cannot read CA file"),
        ("--ca-file", "missing.pem", "cannot read CA file"),
    ],
)
async def test_a_missing_or_unreadable_file_is_unknown_not_a_usage_error(
    tmp_path: Path, option: str, where: str, says: str
) -> None:
    # check --help: a --ca-file, the --known-hosts store or the --client-state file that is
    # missing or cannot be read is UNKNOWN (a folder given as the file included)
    path = tmp_path / where if where != "." else tmp_path
    rc, out, err = await run_check("127.0.0.1:1", option, str(path))
    assert rc == 3, (out, err)
    assert parse_line(out)[0] == "UNKNOWN"
    assert says in out, out
    assert err == ""


async def test_help_documents_the_rules() -> None:
    proc = await asyncio.create_subprocess_exec(
        *RDPTRUST, "check", "--help", stdout=asyncio.subprocess.PIPE, env=subprocess_env()
    )
    out, _ = await proc.communicate()
    text = out.decode()
    assert proc.returncode == 0
    for word in ("CRITICAL", "WARNING", "UNKNOWN", "self-signed, not pinned", "--max-stall"):
        assert word in text


# -- the rules without subprocesses -------------------------------------------------


async def test_evaluate_keeps_summary_on_one_line_and_out_of_perfdata(
    rdp_host: HostFactory, tmp_path: Path
) -> None:
    creds = windows_self_signed("WIN|LAB")
    host = await rdp_host(creds)
    options = AssessOptions(
        probe_timeout_s=5,
        enumerate=False,
        standard_security=False,
        diagnose=False,
        anchors=load_trust_anchors(),
        known_hosts=tmp_path / "kh.json",
    )
    observation = await assess(host.target, options)
    result = evaluate(observation, Thresholds())
    line = result.line()
    assert line.count("|") == 1
    assert "\n" not in line
    assert result.state is PluginState.WARNING


@pytest.mark.parametrize(
    ("datum", "text"),
    [
        (PerfDatum("days_left", 180, "d", "30:", "7:"), "days_left=180d;30:;7:"),
        (PerfDatum("stall", 15.0, "s", "5", "10", 0), "stall=15s;5;10;0"),
        (PerfDatum("time", 0.012, "s", minimum=0), "time=0.012s;;;0"),
        (PerfDatum("days left", 3), "'days left'=3"),
    ],
)
def test_perfdata_format(datum: PerfDatum, text: str) -> None:
    assert str(datum) == text


# -- with --diagnose: the predicted stall and revocation ----------------------------


async def test_diagnose_black_holed_root_list_stall_against_max_stall(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory(root_list="blackhole")
    common = (
        str(lab.target),
        "--diagnose",
        "--root-list-url",
        lab.root_list_url,
        # the trusted list only: the disallowed list has its own switch (WINDOWS.md §2)
        "--disallowed-update",
        "off",
        "--timeout",
        "1",
        "--known-hosts",
        str(no_pins(tmp_path / "kh.json")),
    )
    # A root list that never answers costs the Windows per-URL time-out, 15 s.
    rc, out, _ = await run_check(*common)
    state, summary, perf = parse_line(out)
    assert (rc, state) == (2, "CRITICAL"), out
    assert "predicted stall 15.0 s" in summary
    assert perf["stall"].group(0) == "stall=15s;5;10;0"

    rc, out, _ = await run_check(*common, "--max-stall", "10")
    state, summary, _ = parse_line(out)
    assert (rc, state) == (1, "WARNING")
    assert "predicted stall 15.0 s" in summary

    # With root update off (Method 2) the client does not wait for the root list.
    rc, out, _ = await run_check(*common, "--root-update", "off")
    state, summary, perf = parse_line(out)
    assert (rc, state) == (1, "WARNING")
    assert "self-signed, not pinned" in summary
    assert "predicted stall" not in summary
    assert float(perf["stall"].group("value")) == 0


async def test_diagnose_revoked_is_critical_and_good_is_ok(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory(cert="ca")
    assert lab.ca is not None
    assert lab.ca_cert_path is not None
    args = (
        str(lab.target),
        "--diagnose",
        "--ca-file",
        str(lab.ca_cert_path),
        "--no-system-trust",
        "--root-list-url",
        lab.root_list_url,
        "--timeout",
        "2",
        "--known-hosts",
        str(no_pins(tmp_path / "kh.json")),
    )
    rc, out, _ = await run_check(*args)
    state, summary, perf = parse_line(out)
    assert (rc, state) == (0, "OK"), out
    assert float(perf["stall"].group("value")) < 1

    lab.ca.revoke(lab.credentials.leaf.serial_number)
    rc, out, _ = await run_check(*args)
    state, summary, _ = parse_line(out)
    assert (rc, state) == (2, "CRITICAL")
    assert "revoked" in summary


async def test_an_unreadable_pinned_host_store_is_unknown(
    rdp_host: HostFactory, lab_factory: LabFactory, tmp_path: Path
) -> None:
    store = tmp_path / "kh.json"
    store.write_text("{not json")
    host = await rdp_host(windows_self_signed("127.0.0.1"))
    rc, out, _ = await run_check(str(host.target), "--known-hosts", str(store))
    state, summary, _ = parse_line(out)
    assert (rc, state) == (3, "UNKNOWN")
    assert "not valid JSON" in summary

    lab = await lab_factory()
    rc, out, _ = await run_check(
        str(lab.target),
        "--known-hosts",
        str(store),
        "--diagnose",
        "--root-list-url",
        lab.root_list_url,
        "--timeout",
        "2",
    )
    state, summary, _ = parse_line(out)
    # With or without the diagnosis: the same one reason, the store, before any probe
    assert (rc, state) == (3, "UNKNOWN")
    # read before anything is probed or fetched, with or without --diagnose
    assert "not valid JSON" in summary
