"""Host names DNS cannot carry are usage errors everywhere, never "internal error".

Before: a 64-character label reached Python's ``idna`` codec inside the resolver, which
raised ``UnicodeError``: "internal error", exit 70, from every command (``check``
included, whose exit codes must be 0-3) and 500 from the exporter's ``/probe``.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fixtures.cli import run_rdptrust
from fixtures.documents import assert_valid
from rdptrust.errors import UsageError
from rdptrust.model.target import check_host_name, expand_targets, parse_target
from rdptrust.monitor.config import default_config
from rdptrust.monitor.exporter import Exporter

LONG_LABEL = "a" * 64 + ".test"
LONG_NAME = ".".join(["b" * 60] * 5)  # 304 characters, every label legal
BAD_NAMES = [
    LONG_LABEL,
    LONG_NAME,
    "a..test",
    ".test",
    "bad$name.test",
    "x\u202ey.test",
    # a label may not begin or end with '-' (RFC 1123 2.1): '-' alone reads as standard input
    "-",
    "-rdp01",
    "rdp01-.example.test",
]
GOOD_NAMES = [
    "a" * 63 + ".test",
    ".".join(["c" * 62] * 4),  # 251 characters
    "host.example.",
    "win_lab01",
    "rdp-01.ex-ample.test",
    "xn--bcher-kva.test",
    "zürich.test",
    "127.0.0.1",
    "::1",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_parse_target_refuses_a_name_dns_cannot_carry(name: str) -> None:
    with pytest.raises(UsageError, match="not a host name"):
        parse_target(f"{name}:3389")


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_names_within_the_limits_pass(name: str) -> None:
    check_host_name(name)


@pytest.mark.parametrize("text", ["127.0.0.1:", "[::1]:", "rdp01.example.com:"])
def test_a_colon_with_no_port_is_refused_not_taken_as_3389(text: str) -> None:
    with pytest.raises(UsageError, match="no port after ':'"):
        parse_target(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("::1", ("::1", 3389)), ("fe80::", ("fe80::", 3389)), ("[::1]", ("::1", 3389))],
)
def test_a_bare_ipv6_address_ending_in_a_colon_is_still_an_address(
    text: str, expected: tuple[str, int]
) -> None:
    target = parse_target(text)
    assert (target.host, target.port) == expected


def test_a_target_file_names_the_line() -> None:
    from rdptrust.model.target import TargetLine

    with pytest.raises(UsageError, match=r"^t\.txt:2: .*64 characters"):
        list(
            expand_targets([TargetLine("127.0.0.1", "t.txt:1"), TargetLine(LONG_LABEL, "t.txt:2")])
        )


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}


@pytest.mark.parametrize(
    "argv",
    [
        ["probe", LONG_LABEL],
        ["diagnose", LONG_LABEL],
        ["trust", LONG_LABEL],
        ["history", LONG_LABEL],
        ["scan", LONG_LABEL],
        ["scan", "127.0.0.1:1", LONG_NAME],
        ["probe", "a..test"],
    ],
)
async def test_every_command_answers_usage_error(tmp_path: Path, argv: list[str]) -> None:
    if argv[0] in ("scan", "history"):
        argv = [*argv, "--db", str(tmp_path / "inventory.sqlite3")]
    code, out, err = await run_rdptrust(*argv, env=_env(tmp_path), timeout=60)
    assert code == 64, (out, err)
    assert "not a host name" in err
    assert "internal error" not in err
    assert "Traceback" not in err
    # checked before anything is written: no inventory was created
    assert not (tmp_path / "inventory.sqlite3").exists()


async def test_target_file_with_a_bad_name_is_a_usage_error(tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text(f"127.0.0.1:1\n{LONG_LABEL}\n")
    db = tmp_path / "inventory.sqlite3"
    code, _, err = await run_rdptrust(
        "scan", "-i", str(targets), "--db", str(db), env=_env(tmp_path), timeout=60
    )
    assert code == 64, err
    assert f"{targets}:2:" in err


@pytest.mark.parametrize("name", [LONG_LABEL, LONG_NAME, "a..test"])
async def test_check_says_unknown(tmp_path: Path, name: str) -> None:
    code, out, err = await run_rdptrust("check", name, env=_env(tmp_path), timeout=60)
    assert code == 3, (out, err)
    assert out.startswith("RDPTRUST UNKNOWN - ")
    assert "not a host name" in out
    assert "internal error" not in out + err


@pytest.mark.parametrize("target", [LONG_LABEL, "127.0.0.1:99999", "[::1"])
async def test_check_json_says_unknown_as_its_document(tmp_path: Path, target: str) -> None:
    code, out, err = await run_rdptrust("check", target, "--json", env=_env(tmp_path), timeout=60)
    assert code == 3, (out, err)
    document = json.loads(out)
    assert_valid(document)
    assert (document["state"], document["target"]) == ("UNKNOWN", target)
    assert document["error"]["kind"] == "usage"
    assert document["line"].startswith("RDPTRUST UNKNOWN - ")


@pytest.fixture
async def exporter() -> AsyncIterator[Exporter]:
    async with Exporter(default_config(), port=0) as server:
        yield server


@pytest.mark.parametrize("name", [LONG_LABEL, LONG_NAME, "a..test"])
async def test_exporter_answers_400(exporter: Exporter, name: str) -> None:
    async with httpx.AsyncClient(timeout=20, trust_env=False) as http:
        response = await http.get(f"{exporter.url}/probe", params={"target": name})
    assert response.status_code == 400, response.text
    assert "not a host name" in response.text
