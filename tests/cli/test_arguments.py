"""Arguments every command shares: URLs, trust sources, the pinned-host store, option
names and help, ``python -m rdptrust`` and the licence."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from fixtures.cli import RDPTRUST, no_pins
from fixtures.cli import run_rdptrust as rdptrust
from fixtures.documents import assert_valid
from fixtures.lab import LabFactory
from rdptrust.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]

BAD_URLS = [
    "not a url",
    "ftp://example.com/authrootstl.cab",
    "http://",
    "http://[::1/x",
    "http://host:99999/x",
    "example.com/authrootstl.cab",
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RDPTRUST, *args], capture_output=True, text=True, timeout=60, check=False
    )


def assert_usage_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 64, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert done.stderr.startswith("rdptrust: error:")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in done.stderr


# -- URL options -----------------------------------------------------------------------


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize(
    "command",
    [
        ["diagnose", "127.0.0.1:1", "--root-list-url"],
        ["scan", "--db", "{db}", "--diagnose", "127.0.0.1:1", "--root-list-url"],
        ["check", "127.0.0.1:1", "--diagnose", "--root-list-url"],
        ["ca", "init", "--dir", "{ca}", "--crl-url"],
        ["ca", "init", "--dir", "{ca}", "--ocsp-url"],
        ["ca", "init", "--dir", "{ca}", "--ca-issuers-url"],
    ],
    ids=lambda c: " ".join(c[:2]) + " " + c[-1],
)
def test_every_url_option_refuses_a_malformed_url(
    command: list[str], url: str, tmp_path: Path
) -> None:
    args = [a.format(db=tmp_path / "inv.sqlite3", ca=tmp_path / "ca") for a in command]
    done = run(*args, url)
    assert_usage_error(done, command[-1])
    # Nothing was started: no inventory and no CA were made
    assert not (tmp_path / "inv.sqlite3").exists()
    assert not (tmp_path / "ca").exists()


def test_a_good_url_is_taken_as_given(tmp_path: Path) -> None:
    done = run(
        "ca", "init", "--dir", str(tmp_path / "ca"),
        "--crl-url", "http://pki.example.com/rdp.crl",
        "--ca-issuers-url", "ldap://dc01.example.com/CN=rdp-ca",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


# -- policy ----------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [["--disable", "--enable"], ["--enable", "--disable"], []])
def test_root_autoupdate_needs_exactly_one_of_disable_and_enable(
    flags: list[str], tmp_path: Path
) -> None:
    done = run("policy", "root-autoupdate", *flags, "--out", str(tmp_path / "gpo"))
    assert_usage_error(done, "--disable", "--enable")
    assert not (tmp_path / "gpo").exists()


# -- trust sources and the pinned-host store -------------------------------------------


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"\x30\x82\x01\x00" + bytes(40))  # DER that breaks the decoder
    block = tmp_path / "block.pem"
    block.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    json = tmp_path / "broken.json"
    json.write_text("{not json")
    return {
        "missing": tmp_path / "absent.pem",
        "garbage": garbage,
        "block": block,
        "json": json,
    }


def _no_library_text(text: str) -> None:
    for raw in ("ParseError", "kind:", "asn1", "UnexpectedTag", "ShortData", "InvalidLength"):
        assert raw not in text, text


@pytest.mark.parametrize("which", ["missing", "garbage", "block"])
@pytest.mark.parametrize("command", ["diagnose", "scan"])
def test_a_bad_ca_file_is_a_clear_usage_error(tmp_path: Path, which: str, command: str) -> None:
    path = _bad_files(tmp_path)[which]
    extra = ["--db", str(tmp_path / "inv.sqlite3"), "--diagnose"] if command == "scan" else []
    done = run(command, *extra, "127.0.0.1:1", "--ca-file", str(path))
    assert_usage_error(done, "--ca-file", str(path))
    _no_library_text(done.stderr)


@pytest.mark.parametrize("which", ["missing", "json"])
@pytest.mark.parametrize("command", ["diagnose", "scan"])
def test_a_missing_or_broken_known_hosts_is_a_clear_usage_error(
    tmp_path: Path, which: str, command: str
) -> None:
    path = _bad_files(tmp_path)[which]
    extra = ["--db", str(tmp_path / "inv.sqlite3"), "--diagnose"] if command == "scan" else []
    done = run(command, *extra, "127.0.0.1:1", "--known-hosts", str(path))
    assert_usage_error(done, "--known-hosts", str(path))


@pytest.mark.parametrize(
    ("option", "which", "words"),
    [
        ("--known-hosts", "missing", "does not exist"),
        ("--known-hosts", "json", "not valid JSON"),
        ("--ca-file", "missing", "cannot read CA file"),
        ("--ca-file", "garbage", "not a DER or PEM"),
        ("--ca-file", "block", "certificate 1 is unreadable"),
    ],
)
def test_check_says_unknown_for_a_bad_trust_source(
    tmp_path: Path, option: str, which: str, words: str
) -> None:
    # Even for a host that cannot be reached: the source is read before the probe
    path = _bad_files(tmp_path)[which]
    done = run("check", "127.0.0.1:1", option, str(path))
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout.startswith("RDPTRUST UNKNOWN - ")
    assert words in done.stdout
    assert len(done.stdout.splitlines()) == 1
    _no_library_text(done.stdout)


@pytest.mark.parametrize(
    ("option", "which", "kind", "store"),
    [
        ("--known-hosts", "missing", "store", True),
        ("--known-hosts", "json", "store", True),
        ("--ca-file", "missing", "pki", False),
        ("--ca-file", "garbage", "pki", False),
    ],
)
def test_check_json_says_unknown_for_a_bad_trust_source_as_its_document(
    tmp_path: Path, option: str, which: str, kind: str, store: bool
) -> None:
    path = _bad_files(tmp_path)[which]
    done = run("check", "127.0.0.1:1", option, str(path), "--json")
    assert done.returncode == 3, done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert_valid(document)
    assert (document["state"], document["exit_code"]) == ("UNKNOWN", 3)
    assert document["target"] == "127.0.0.1:1"
    assert document["error"]["kind"] == kind
    assert document["line"] == "RDPTRUST UNKNOWN - " + document["error"]["message"]
    assert document["store_error"] == (document["error"]["message"] if store else None)
    assert (document["verdict"], document["problems"], document["findings"]) == ("unknown", [], [])


async def test_trust_writes_the_store_diagnose_reads(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory()
    store = tmp_path / "pins" / "known_hosts.json"
    # trust takes --known-hosts, and creates the store
    code, _, err = await rdptrust("trust", str(lab.target), "--known-hosts", str(store))
    assert code == 0, err
    code, out, err = await rdptrust("trust", "--list", "--known-hosts", str(store))
    assert code == 0, err
    assert lab.certificate_sha256 in out
    # the old name is gone
    code, _, err = await rdptrust("trust", str(lab.target), "--store", str(store))
    assert code == 64
    assert "--store" in err
    # an empty store is not the same as none: diagnose reads it, trust accepts it
    empty = no_pins(tmp_path / "empty.json")
    code, _, err = await rdptrust(
        "diagnose", str(lab.target), "--known-hosts", str(empty), "--no-system-trust",
        "--root-update", "off", "--fetch-timeout", "1",
    )  # fmt: skip
    assert code in (0, 1, 2), err
    assert "rdptrust: error:" not in err


# -- one name for one idea, help for every option ---------------------------------------


def _commands() -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(cli)

    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        yield path, command
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                yield from walk(sub, f"{path} {name}")

    yield from walk(cli, "rdptrust")


def test_every_option_of_every_command_has_help() -> None:
    missing = [
        f"{path} {'/'.join(param.opts)}"
        for path, command in _commands()
        for param in command.params
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert missing == []


def test_every_number_option_refuses_nan_and_infinity() -> None:
    # float("nan") fails no range comparison: a plain click.FloatRange would take it
    numbers = [
        (path, param)
        for path, command in _commands()
        for param in command.params
        if isinstance(param.type, click.FloatRange)
    ]
    assert len(numbers) >= 20
    ctx = click.Context(cli)
    taken = []
    for path, param in numbers:
        for text in ("nan", "NaN", "inf", "-inf", "1e999"):
            try:
                param.type.convert(text, param, ctx)
            except click.BadParameter:
                continue
            taken.append(f"{path} {'/'.join(param.opts)} {text}")
    assert taken == []


@pytest.mark.parametrize(
    "args",
    [
        ("scan", "--db", "{db}", "--timeout", "nan", "127.0.0.1:1"),
        ("scan", "--db", "{db}", "--deadline", "nan", "127.0.0.1:1"),
        ("db", "prune", "--db", "{db}", "--keep-days", "1e10"),
        ("db", "prune", "--db", "{db}", "--keep-days", "inf"),
        ("probe", "127.0.0.1:1", "--timeout", "nan"),
    ],
)
def test_a_number_that_is_not_finite_is_a_usage_error(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    db = tmp_path / "inventory.sqlite3"
    done = run(*(a.format(db=db) for a in args))
    assert done.returncode == 64, done.stdout + done.stderr
    assert done.stderr.startswith("rdptrust: error: ")
    assert len(done.stderr.splitlines()) == 1
    assert not db.exists()


def test_the_same_idea_has_the_same_option_name() -> None:
    names = {
        path: {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
        for path, command in _commands()
    }
    # The pinned-host store is --known-hosts everywhere it is read or written
    for path in ("rdptrust trust", "rdptrust diagnose", "rdptrust check", "rdptrust scan"):
        assert "--known-hosts" in names[path], path
        assert "--store" not in names[path], path
    # The system trust store is switched the same way wherever it is used
    for path in ("rdptrust diagnose", "rdptrust check"):
        assert {"--system-trust", "--no-system-trust"} <= names[path], path
    # --ca-file is described the same way wherever it is accepted
    helps = {
        p.help
        for _, command in _commands()
        for p in command.params
        if isinstance(p, click.Option) and "--ca-file" in p.opts
    }
    assert len({h.removeprefix("With --diagnose: ").lower() for h in helps if h}) == 1


# -- python -m rdptrust, the licence ---------------------------------------------------


def test_python_dash_m_rdptrust() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rdptrust", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("rdptrust, version ")
    done = subprocess.run(
        [sys.executable, "-m", "rdptrust", "policy", "root-autoupdate", "--disable", "--enable"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 64


def test_the_licence_file_matches_the_declared_licence() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 rdptrust developers" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text
