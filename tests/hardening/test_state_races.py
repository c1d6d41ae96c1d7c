"""State files under concurrency: parallel commands lose nothing; ``ca init`` is atomic.

Real parallel processes: 8 ``ca issue``, 8 ``ca revoke``, 2 ``rdptrust trust`` started
together, then the register, the CRL and the pinned store are read back.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

import rdptrust.pki.ca as ca_module
from fixtures.cli import run_rdptrust
from fixtures.lab import LabFactory
from rdptrust.errors import StoreError, UsageError
from rdptrust.files import write_atomic
from rdptrust.pki.ca import CertificateAuthority
from rdptrust.pki.pinning import KnownHosts

RDPTRUST = (sys.executable, "-m", "rdptrust.cli.main")
PARALLEL = 8


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "data"))
    return env


def _together(tmp_path: Path, commands: list[list[str]]) -> list[tuple[int, str]]:
    """Start every command at once, then wait for all: (exit code, stderr) each."""
    procs = [
        subprocess.Popen(
            [*RDPTRUST, *argv],
            env=_env(tmp_path),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in commands
    ]
    results = []
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        results.append((proc.returncode, err))
    return results


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "ca"
    CertificateAuthority.init(directory, key_size=2048)
    return directory


def test_parallel_issue_then_parallel_revoke_lose_nothing(tmp_path: Path, ca_dir: Path) -> None:
    # Given a CA, when 8 hosts are issued at once
    hosts = [f"rdp{n}.lab.test" for n in range(PARALLEL)]
    issued = _together(
        tmp_path,
        [["ca", "issue", h, "--dir", str(ca_dir), "--out", str(tmp_path / h)] for h in hosts],
    )
    assert all(code == 0 for code, _ in issued), issued
    # Then the register lists all 8
    register = json.loads((ca_dir / "ca.json").read_text())
    assert sorted(r["host"] for r in register["issued"]) == hosts
    serials = {int(r["serial"], 16) for r in register["issued"]}
    assert len(serials) == PARALLEL
    # When all 8 are revoked at once
    revoked = _together(tmp_path, [["ca", "revoke", h, "--dir", str(ca_dir)] for h in hosts])
    assert all(code == 0 for code, _ in revoked), revoked
    # Then the register marks 8 revoked and the CRL on disk lists all 8 serials
    register = json.loads((ca_dir / "ca.json").read_text())
    assert all(r["revoked_at"] for r in register["issued"])
    crl = x509.load_der_x509_crl((ca_dir / "crl.der").read_bytes())
    assert {entry.serial_number for entry in crl} == serials
    assert crl.is_signature_valid(
        x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes()).public_key()  # type: ignore[arg-type]
    )
    # and every CRL signed had its own number (8 revocations, 8 CRLs)
    assert register["crl_number"] == 1 + PARALLEL


async def test_two_parallel_trust_keep_both_pins(tmp_path: Path, lab_factory: LabFactory) -> None:
    # Given two RDP endpoints
    lab = await lab_factory(count=2)
    targets = [str(t) for t in lab.info().rdp]
    for round_ in range(3):
        # When both are pinned at once into one store, three rounds running
        store = tmp_path / f"round{round_}" / "known_hosts.json"
        results = await asyncio.gather(
            *(
                run_rdptrust("trust", t, "--known-hosts", str(store), "--timeout", "10")
                for t in targets
            )
        )
        # Then both commands succeed and the store holds both pins
        assert all(code == 0 for code, _, _ in results), results
        pins = KnownHosts.load(store).pins()
        assert sorted(f"{p.host}:{p.port}" for p in pins) == sorted(targets)


def test_ca_init_failing_midway_leaves_no_half_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a disk that fills up after two files were written
    directory = tmp_path / "ca"
    writes: list[Path] = []

    def filling(path: Path, data: bytes | str, mode: int | None = None) -> Path:
        if len(writes) == 2:
            raise StoreError(f"cannot write {path}: {os.strerror(errno.ENOSPC)}")
        writes.append(Path(path))
        return write_atomic(path, data, mode=mode)

    monkeypatch.setattr(ca_module, "write_atomic", filling)
    # When ca init runs, it fails with the disk's reason
    with pytest.raises(StoreError, match="No space left"):
        CertificateAuthority.init(directory, key_size=2048)
    # Then the folder holds nothing of a CA (no staging folder either)
    assert [p.name for p in directory.iterdir() if not p.name.endswith(".lock")] == []
    # and init and load agree: no CA, and a second init (disk freed) succeeds
    with pytest.raises(UsageError, match="no CA"):
        CertificateAuthority.load(directory)
    monkeypatch.undo()
    CertificateAuthority.init(directory, key_size=2048)
    assert CertificateAuthority.load(directory).records == []


def test_ca_init_with_force_failing_midway_keeps_the_old_ca(
    tmp_path: Path, ca_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = (ca_dir / "ca-key.pem").read_bytes()

    def full(path: Path, data: bytes | str, mode: int | None = None) -> Path:
        raise StoreError(f"cannot write {path}: {os.strerror(errno.ENOSPC)}")

    monkeypatch.setattr(ca_module, "write_atomic", full)
    with pytest.raises(StoreError):
        CertificateAuthority.init(ca_dir, key_size=2048, force=True)
    monkeypatch.undo()
    assert (ca_dir / "ca-key.pem").read_bytes() == old
    CertificateAuthority.load(ca_dir)


def test_ca_init_where_no_folder_can_be_made_is_73_and_leaves_nothing(tmp_path: Path) -> None:
    # Given a --dir under a regular file (no folder can be made there, even as root)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    done = subprocess.run(
        [*RDPTRUST, "ca", "init", "--dir", str(blocker / "ca")],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 73, done.stderr
    assert done.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]


def test_a_half_ca_from_an_older_rdptrust_is_named_alike_by_init_and_issue(
    tmp_path: Path, ca_dir: Path
) -> None:
    # Given a folder with a key but no register (what a failed init used to leave)
    (ca_dir / "ca.json").unlink()
    # Then init refuses and issue cannot run, and both call it an incomplete CA
    with pytest.raises(UsageError, match="incomplete CA"):
        CertificateAuthority.init(ca_dir, key_size=2048)
    with pytest.raises(UsageError, match="incomplete CA"):
        CertificateAuthority.load(ca_dir)
