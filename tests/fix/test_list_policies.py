"""The disallowed-list switch and the RootDirUrl mirror, as deployable policy files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.documents import assert_valid
from rdptrust.engine.client_live import AUTO_UPDATE
from rdptrust.fix.policy import (
    AUTHROOT_POLICY_KEY,
    disallowed_autoupdate,
    reg_file_text,
    root_dir_url,
)
from rdptrust.fix.registry_pol import RegType, parse_registry_pol


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rdptrust.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_disallowed_switch_writes_enable_disallowed_cert_auto_update() -> None:
    (entry,) = disallowed_autoupdate(disable=True).entries
    assert (entry.key, entry.value_name, entry.value) == (
        AUTHROOT_POLICY_KEY,
        "EnableDisallowedCertAutoUpdate",
        0,
    )
    assert disallowed_autoupdate(disable=False).entries[0].value == 1
    assert "Method 2" in disallowed_autoupdate(disable=True).description


def test_root_dir_url_is_a_string_value_and_refuses_other_schemes() -> None:
    (entry,) = root_dir_url("http://pki.example.internal/ctl/").entries
    assert (entry.value_name, entry.type, entry.value) == (
        "RootDirUrl",
        RegType.REG_SZ,
        "http://pki.example.internal/ctl/",
    )
    text = reg_file_text(root_dir_url("http://pki.example.internal/ctl/"))
    assert '"RootDirUrl"="http://pki.example.internal/ctl/"' in text
    # where the chain engine reads it (and rdptrust client-state with it): AuthRoot\AutoUpdate,
    # not the Policies key of DisableRootAutoUpdate
    assert entry.key.lower() == AUTO_UPDATE.lower()
    assert ("[HKEY_LOCAL_MACHINE\\" + AUTO_UPDATE + "]").lower() in text.lower()
    assert "Policies" not in entry.key
    for good in ("file://fileserver/ctl", "file://\\\\server1\\CTL", "file:///C:/ctl/"):
        assert root_dir_url(good).entries[0].value == good
    for bad in (
        "ftp://x/",
        "http://x/\r\nEvil=1",
        "ctl",
        "http://",
        "http:///ctl/",
        "http://x:99999/ctl",
        "http://[::1/ctl",
        "file://",
        "file:///",
    ):
        with pytest.raises(ValueError, match="RootDirUrl"):
            root_dir_url(bad)


def test_cli_writes_both(tmp_path: Path) -> None:
    proc = run_cli("policy", "disallowed-autoupdate", "--disable", "--out", str(tmp_path / "d"))
    assert proc.returncode == 0, proc.stderr
    (entry,) = parse_registry_pol((tmp_path / "d" / "Registry.pol").read_bytes())
    assert (entry.value_name, entry.value) == ("EnableDisallowedCertAutoUpdate", 0)
    proc = run_cli(
        "policy", "root-dir-url", "http://127.0.0.1:9/ctl/", "--out", str(tmp_path / "m"), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert_valid(doc)
    assert [e["value_name"] for e in doc["entries"]] == ["RootDirUrl"]


def test_cli_refuses_a_bad_mirror_url_and_an_ambiguous_switch(tmp_path: Path) -> None:
    bad = run_cli("policy", "root-dir-url", "ftp://x/", "--out", str(tmp_path))
    assert bad.returncode == 64
    assert "RootDirUrl" in bad.stderr
    for url in ("http://", "http://x:99999/ctl"):
        bad = run_cli("policy", "root-dir-url", url, "--out", str(tmp_path / "none"))
        assert bad.returncode == 64, bad.stdout
        assert "RootDirUrl" in bad.stderr
        assert not (tmp_path / "none").exists()
    both = run_cli("policy", "disallowed-autoupdate", "--out", str(tmp_path))
    assert both.returncode == 64
    assert "Examples:" in run_cli("policy", "root-dir-url", "--help").stdout
