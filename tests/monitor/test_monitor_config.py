"""The exporter's YAML configuration: what it accepts, what it refuses, and the CLI's answer."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from monitor_hosts import RDPTRUST, subprocess_env

from rdptrust.errors import UsageError
from rdptrust.monitor.config import default_config, load_config, parse_config
from rdptrust.monitor.exporter import listen_address
from rdptrust.monitor.metrics import CertificateMemory

FULL = """
max_concurrent_probes: 3
modules:
  default:
  fast:
    timeout: 500ms
    enumerate: false
    diagnose: true
    system_trust: false
    ca_files: [{ca}]
    known_hosts: /tmp/known_hosts.json
    warn_days: 21
    cert_changed_hold: 2m
    fetch_timeout: 3s
    windows_url_timeout: 4s
    windows_revocation_timeout: 6
    root_update: false
    root_list_url: http://127.0.0.1:9/authrootstl.cab
    revocation_timeouts: per-url
    disallowed_update: false
    ctl_due: false
    client: win8.1
    crl_first: true
    domain: Corp.Example
    dns_server: 127.0.0.1:5353
"""


def test_a_full_configuration(tmp_path: Path, ca_file: Path) -> None:
    path = tmp_path / "exporter.yml"
    path.write_text(FULL.format(ca=ca_file))
    config = load_config(path)
    assert config.max_concurrent_probes == 3
    assert set(config.modules) == {"default", "fast"}
    default = config.module(None)
    assert (default.timeout_s, default.enumerate, default.diagnose) == (10.0, True, False)
    fast = config.module("fast")
    assert fast.timeout_s == 0.5
    assert (fast.enumerate, fast.diagnose, fast.system_trust, fast.root_update) == (
        False,
        True,
        False,
        False,
    )
    assert fast.ca_files == (ca_file,)
    assert fast.known_hosts == Path("/tmp/known_hosts.json")
    assert (fast.warn_days, fast.cert_changed_hold_s) == (21, 120.0)
    assert (fast.windows_url_timeout_s, fast.windows_revocation_timeout_s) == (4.0, 6.0)
    assert fast.fetch_timeout_s == 3.0
    assert fast.root_list_url == "http://127.0.0.1:9/authrootstl.cab"
    windows = fast.options(None, 10.0).windows
    assert (windows.revocation_timeouts, windows.disallowed_update, windows.ctl_due) == (
        "per-url",
        False,
        False,
    )
    assert windows.client == "win8.1"
    assert windows.ocsp_first is False  # crl_first: true
    assert default.options(None, 10.0).windows.ocsp_first is True
    assert (windows.domain, windows.dns_server) == ("corp.example", "127.0.0.1:5353")
    with pytest.raises(UsageError, match=r"client: expected one of win7, win8\.1, win10"):
        parse_config({"modules": {"a": {"client": "win11"}}})
    # The module's CA file is loaded once, at start.
    assert len(config.anchors["fast"]) == 1
    with pytest.raises(UsageError, match="unknown module 'other'"):
        config.module("other")


def test_budget_is_shared_between_the_steps_of_a_scrape() -> None:
    config = parse_config({"modules": {"a": {"timeout": 9, "diagnose": True}}})
    options = config.module("a").options(None, 8.0)
    # Probe, enumeration and two rounds of fetches one after another: a quarter each.
    assert options.probe_timeout_s == pytest.approx(2.0)
    assert options.fetch_timeout_s == pytest.approx(2.0)
    # The Windows time-out modelled stays the module's.
    assert options.windows.url_timeout_s == 15.0


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ([], "expected a mapping"),
        ({}, "'modules' is missing"),
        ({"modules": {}}, "'modules' must map"),
        ({"modules": {"a": {}}, "extra": 1}, "unknown key 'extra'"),
        ({"modules": {"a": {"timeot": 3}}}, "modules.a: unknown key 'timeot'"),
        ({"modules": {"a": {"timeout": "abc"}}}, "modules.a.timeout: expected a duration"),
        ({"modules": {"a": {"timeout": 0}}}, "modules.a.timeout: expected a duration"),
        ({"modules": {"a": {"timeout": True}}}, "modules.a.timeout"),
        ({"modules": {"a": {"enumerate": "yes"}}}, "modules.a.enumerate: expected true or false"),
        ({"modules": {"a": {"ca_files": 3}}}, "modules.a.ca_files: expected a list"),
        ({"modules": {"a": {"ca_files": [""]}}}, r"modules.a.ca_files\[0\]"),
        ({"modules": {"a": {"warn_days": 1.5}}}, "modules.a.warn_days: expected a whole number"),
        ({"modules": {"a": {"root_list_url": "ftp://x/y"}}}, "expected an http:// or https://"),
        ({"modules": {"a": "fast"}}, "modules.a: expected a mapping"),
        ({"modules": {"a": {"fetch_allow": ["10.0.0.0/33"]}}}, "modules.a.fetch_allow: '10.0"),
        ({"modules": {"a": {"fetch_deny": 5}}}, "modules.a.fetch_deny: expected a list"),
        ({"modules": {"a b": {}}}, "module name 'a b'"),
        ({"modules": {"a": {"domain": "a..b"}}}, "modules.a.domain: 'a..b' is not a DNS"),
        ({"modules": {"a": {"dns_server": "ns1"}}}, "modules.a.dns_server: bad DNS server"),
        ({"modules": {"a": {}}, "max_concurrent_probes": 0}, "max_concurrent_probes"),
    ],
)
def test_bad_configurations_are_refused_with_the_key(document: object, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        parse_config(document, "exporter.yml")


def run_exporter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RDPTRUST, "exporter", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=subprocess_env(),
        check=False,
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("modules:\n  default:\n    timeout: [1\n", "not valid YAML at line"),
        ("modules:\n  default:\n    colour: blue\n", "unknown key 'colour'"),
        ("modules:\n  default:\n    ca_files: [/nonexistent/ca.pem]\n", "cannot read CA file"),
    ],
)
def test_the_cli_refuses_a_bad_config_with_one_line_and_exit_64(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "exporter.yml"
    path.write_text(text)
    result = run_exporter("--config", str(path), "--check-config")
    assert result.returncode == 64
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("rdptrust: error: ")
    assert says in lines[0]


def test_the_cli_checks_a_good_config_and_rejects_a_bad_listen_address(
    tmp_path: Path, ca_file: Path
) -> None:
    path = tmp_path / "exporter.yml"
    path.write_text(FULL.format(ca=ca_file))
    result = run_exporter("--config", str(path), "--check-config")
    assert result.returncode == 0
    assert "modules: default, fast" in result.stdout
    assert run_exporter("--listen", "nowhere", "--check-config").returncode == 64
    assert run_exporter("--config", str(tmp_path / "missing.yml")).returncode == 64


def test_default_config_has_a_probe_and_a_diagnose_module() -> None:
    config = default_config()
    assert config.module(None).diagnose is False
    assert config.module("diagnose").diagnose is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9389", ("127.0.0.1", 9389)),
        (":0", ("127.0.0.1", 0)),
        ("[::1]:9389", ("::1", 9389)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_listen_address(text: str, expected: tuple[str, int]) -> None:
    assert listen_address(text) == expected


@pytest.mark.parametrize("text", ["9389", "host:", "host:70000", "::1:9389", "h:x"])
def test_bad_listen_address(text: str) -> None:
    with pytest.raises(UsageError):
        listen_address(text)


def test_certificate_memory_holds_a_change_then_forgets_it() -> None:
    memory = CertificateMemory(capacity=2)
    assert memory.see("a", "1", hold_s=60, now=1000).changed is False
    assert memory.see("a", "1", hold_s=60, now=1010).changed is False
    changed = memory.see("a", "2", hold_s=60, now=1020)
    assert (changed.changed, changed.last_change) == (True, 1020)
    assert memory.see("a", "2", hold_s=60, now=1080).changed is True
    later = memory.see("a", "2", hold_s=60, now=1081)
    assert (later.changed, later.last_change) == (False, 1020)
    # Bounded: a third target pushes out the least recently seen one.
    memory.see("b", "x", hold_s=60, now=1100)
    memory.see("c", "y", hold_s=60, now=1101)
    assert len(memory) == 2
    assert memory.see("a", "3", hold_s=60, now=1102).changed is False  # "a" was forgotten


def test_fetch_networks_become_the_module_destination_policy() -> None:
    config = parse_config(
        {
            "modules": {
                "a": {
                    "fetch_allow": ["127.0.0.0/8", "10.20.0.0/16"],
                    "fetch_deny": "10.20.9.0/24",
                    "root_list_url": "http://127.0.0.1:1/authrootstl.cab",
                }
            }
        }
    )
    options = config.modules["a"].options(None, 10.0)
    policy = options.destinations
    assert policy is not None
    assert policy.refusal("http://x/", "10.20.1.1", 80) is None
    assert policy.refusal("http://x/", "10.20.9.1", 80) is not None
    assert policy.refusal("http://x/", "192.168.0.1", 80) is not None
    assert policy.trusted("http://127.0.0.1:1/authrootstl.cab")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("basic_auth_users:\n  prometheus: plain\n", "expected a bcrypt hash"),
        ("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n", "cannot load the TLS"),
        ("http_server_config:\n  http2: true\n", "'http_server_config' is not supported"),
    ],
)
def test_the_cli_refuses_a_bad_web_config_with_one_line_and_exit_64(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "web.yml"
    path.write_text(text)
    result = run_exporter("--web.config.file", str(path), "--check-config")
    assert result.returncode == 64
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("rdptrust: error: ")
    assert says in lines[0]
