"""The Windows-only paths, taken on Linux: no os.fchmod, no loop signal handlers, icacls.

A real Windows machine is not available to the test suite; what Windows Python lacks or
refuses (``os.fchmod`` before 3.13, the Proactor loop's ``add_signal_handler``) is
removed here, and rdptrust's ``files.WINDOWS`` seam sends it down its win32 branches.
``icacls`` is a recording stand-in put on PATH, or absent (then the warning path runs).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import rdptrust.files
from rdptrust.cli.signals import stop_on_signals
from rdptrust.files import PRIVATE_MODE, write_atomic
from rdptrust.fix.freerdp import default_freerdp_dir

RDPTRUST = (sys.executable, "-m", "rdptrust.cli.main")

#: A stand-in for icacls: records its arguments and the size the file had when called.
FAKE_ICACLS = """#!{python}
import json, os, sys
target = sys.argv[1]
with open(os.environ["ICACLS_LOG"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "size": os.path.getsize(target)}}) + "\\n")
sys.exit(int(os.environ.get("ICACLS_EXIT", "0")))
"""


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process on rdptrust's Windows paths, with no os.fchmod."""
    monkeypatch.setattr(rdptrust.files, "WINDOWS", True)
    monkeypatch.delattr(os, "fchmod", raising=False)
    monkeypatch.setenv("USERNAME", "alice")
    monkeypatch.setenv("USERDOMAIN", "CONTOSO")


def _fake_icacls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exit_code: int = 0) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "icacls"
    script.write_text(FAKE_ICACLS.format(python=sys.executable))
    script.chmod(0o755)
    log = tmp_path / "icacls.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ICACLS_LOG", str(log))
    monkeypatch.setenv("ICACLS_EXIT", str(exit_code))
    return log


@pytest.mark.usefixtures("windows")
def test_a_secret_is_restricted_with_icacls_before_it_holds_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Windows (no os.fchmod) and icacls on PATH
    log = _fake_icacls(tmp_path, monkeypatch)
    key = tmp_path / "ca-key.pem"
    # When a private key is written
    write_atomic(key, b"-----BEGIN PRIVATE KEY-----\n", mode=PRIVATE_MODE)
    # Then icacls removed inheritance and granted the current user alone, on the
    # temporary file while it was still empty; the key is in place; nothing was said
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == 1
    argv = calls[0]["argv"]
    assert Path(argv[0]).parent == tmp_path
    assert argv[0] != str(key)
    assert argv[1:] == ["/inheritance:r", "/grant:r", "CONTOSO\\alice:F"]
    assert calls[0]["size"] == 0
    assert key.read_bytes() == b"-----BEGIN PRIVATE KEY-----\n"
    assert capsys.readouterr().err == ""


@pytest.mark.usefixtures("windows")
def test_a_public_file_is_written_without_icacls_or_chmod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _fake_icacls(tmp_path, monkeypatch)
    write_atomic(tmp_path / "ca.pem", "certificate\n")
    assert (tmp_path / "ca.pem").read_text() == "certificate\n"
    assert not log.exists()


@pytest.mark.usefixtures("windows")
@pytest.mark.parametrize("failing", ["exit", "missing"])
def test_a_secret_that_cannot_be_restricted_is_said_so(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    failing: str,
) -> None:
    # Given icacls that fails, or no icacls at all
    if failing == "exit":
        _fake_icacls(tmp_path, monkeypatch, exit_code=5)
    else:
        monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    key = tmp_path / "host-key.pem"
    # When a key is written, it is written, and one warning line names it
    write_atomic(key, b"secret", mode=PRIVATE_MODE)
    assert key.read_bytes() == b"secret"
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("rdptrust: warning: ")
    assert str(key) in err
    assert "not restricted to the current user" in err


def _forced_env(tmp_path: Path, path: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RDPTRUST_FORCE_WINDOWS_PATHS="1",
        PATH=path,
        HOME=str(tmp_path / "home"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        USERNAME="alice",
    )
    env.pop("USERDOMAIN", None)
    return env


@pytest.mark.parametrize("icacls", [True, False])
def test_ca_init_on_windows_paths_restricts_the_key_or_says_it_did_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, icacls: bool
) -> None:
    # Given a CLI process on the Windows paths (os.fchmod gone), with or without icacls
    log = _fake_icacls(tmp_path, monkeypatch) if icacls else tmp_path / "icacls.log"
    path = os.environ["PATH"] if icacls else str(Path(sys.executable).parent)
    env = _forced_env(tmp_path, path)
    # When the CA is created
    done = subprocess.run(
        [*RDPTRUST, "ca", "init", "--dir", str(tmp_path / "ca")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then it works (no AttributeError), and the key is restricted or the output says not
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ca" / "ca-key.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
    if icacls:
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        assert [c["argv"][1:] for c in calls] == [["/inheritance:r", "/grant:r", "alice:F"]]
        assert "not restricted" not in done.stderr
    else:
        assert "ca-key.pem holds a secret but is not restricted" in done.stderr
        assert "Traceback" not in done.stderr


def test_lab_stops_on_sigint_without_loop_signal_handlers(tmp_path: Path) -> None:
    # Given the lab on the Windows paths: its loop refuses add_signal_handler
    env = _forced_env(tmp_path, os.environ["PATH"])
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.Popen(
        [*RDPTRUST, "lab"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["rdp"]
        # When it gets Ctrl-C
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # Then it stops cleanly: exit 0, no traceback, its private folder gone
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert not list(tmp_path.glob("rdptrust-lab-*"))


async def test_stop_on_signals_falls_back_to_signal_signal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a loop that refuses add_signal_handler, as the Proactor loop does
    loop = asyncio.get_running_loop()

    def refuse(*args: object) -> None:
        raise NotImplementedError

    monkeypatch.setattr(loop, "add_signal_handler", refuse)
    before = signal.getsignal(signal.SIGINT)
    stop = asyncio.Event()
    # When SIGINT arrives inside the block
    with stop_on_signals(stop):
        assert signal.getsignal(signal.SIGINT) is not before
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.wait_for(stop.wait(), timeout=5)
    # Then the stop was set instead of KeyboardInterrupt, and the old handler is back
    assert signal.getsignal(signal.SIGINT) is before


def test_freerdp_folder_as_winpr_finds_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(rdptrust.files, "WINDOWS", True)
    assert default_freerdp_dir() == tmp_path / "Roaming" / "freerdp"
    monkeypatch.setattr(rdptrust.files, "WINDOWS", False)
    assert default_freerdp_dir() == tmp_path / "xdg" / "freerdp"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_freerdp_dir() == tmp_path / "home" / ".config" / "freerdp"
