"""The pinned-host store: round trips, corrupt files, atomic saves and pin checks."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest
from certs_for_tests import NOW, hierarchy, issue, rsa_key

from rdptrust.errors import StoreError
from rdptrust.model.pin import PinStatus
from rdptrust.model.target import Target
from rdptrust.pki.facts import fingerprint_sha256, load_certificate, public_key_sha256
from rdptrust.pki.pinning import KnownHosts, check_pin, default_path, pin_from_certificate

HOST = issue("WIN-LAB01", not_before=NOW - dt.timedelta(days=180), days=180)
# Windows' recreation: same subject, self-signed, new key, valid from when the old one ended
RECREATED = issue("WIN-LAB01", key=rsa_key(2048, 1), not_before=NOW, days=180)
TARGET = Target("WIN-LAB01", 3389)


def store_with(tmp_path: Path, *targets: Target) -> KnownHosts:
    store = KnownHosts.load(tmp_path / "known_hosts.json")
    for target in targets:
        store.add(pin_from_certificate(target, HOST.cert, now=NOW))
    return store


def test_pin_records_the_certificate() -> None:
    pin = pin_from_certificate(TARGET, HOST.cert, now=NOW)
    assert (pin.host, pin.port) == ("WIN-LAB01", 3389)
    assert pin.sha256 == fingerprint_sha256(HOST.cert)
    assert pin.subject == pin.issuer == "CN=WIN-LAB01"
    assert pin.self_signed is True
    assert pin.not_before == HOST.cert.not_valid_before_utc
    assert pin.not_after == HOST.cert.not_valid_after_utc
    assert pin.public_key_sha256 == public_key_sha256(HOST.cert)
    assert pin.pinned_at == NOW
    assert load_certificate(pin.certificate_pem.encode("ascii")) == HOST.cert


def test_missing_file_is_an_empty_store(tmp_path: Path) -> None:
    store = KnownHosts.load(tmp_path / "nothing" / "known_hosts.json")
    assert store.pins() == ()
    assert store.get(TARGET) is None
    assert not (tmp_path / "nothing").exists()


def test_default_path_is_in_the_user_data_dir() -> None:
    path = default_path()
    assert path.name == "known_hosts.json"
    assert "rdptrust" in path.parts


def test_save_and_load_round_trip_with_private_mode(tmp_path: Path) -> None:
    # Given two pinned hosts saved into a directory that does not exist yet
    path = tmp_path / "sub" / "known_hosts.json"
    store = KnownHosts.load(path)
    store.add(pin_from_certificate(TARGET, HOST.cert, now=NOW))
    store.add(pin_from_certificate(Target("::1", 33891), RECREATED.cert, now=NOW))
    store.save()
    # Then the file is private, versioned and reads back equal
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["schema"] == "rdptrust.known_hosts"
    assert document["version"] == 1
    assert [h["host"] for h in document["hosts"]] == ["::1", "WIN-LAB01"]
    assert document["hosts"][1]["pinned_at"] == "2026-06-01T12:00:00Z"
    again = KnownHosts.load(path)
    assert again.pins() == store.pins()
    assert again.path == path
    # No temporary file is left behind; the lock file stays (it is how saves serialise).
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "known_hosts.json",
        "known_hosts.json.lock",
    ]


def test_one_entry_per_host_and_port_case_insensitive(tmp_path: Path) -> None:
    store = store_with(tmp_path, TARGET)
    store.add(pin_from_certificate(Target("win-lab01.", 3389), RECREATED.cert, now=NOW))
    assert len(store) == 1
    pin = store.get(Target("Win-Lab01", 3389))
    assert pin is not None
    assert pin.sha256 == fingerprint_sha256(RECREATED.cert)
    assert store.get(Target("win-lab01", 3390)) is None
    store.add(pin_from_certificate(Target("win-lab01", 3390), HOST.cert, now=NOW))
    assert len(store) == 2
    store.add(pin_from_certificate(Target("0:0::1", 3389), HOST.cert, now=NOW))
    assert store.get(Target("::1", 3389)) is not None


def test_remove(tmp_path: Path) -> None:
    store = store_with(tmp_path, TARGET)
    assert store.remove(Target("win-lab01", 3389)) is True
    assert store.remove(TARGET) is False
    assert store.pins() == ()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "not an rdptrust known-hosts file"),
        ('{"schema": "rdptrust.known_hosts", "version": 99, "hosts": []}', "newer rdptrust"),
        ('{"schema": "rdptrust.known_hosts", "hosts": []}', "version is missing"),
        ('{"schema": "rdptrust.known_hosts", "version": 1, "hosts": {}}', "not a list"),
        ('{"schema": "rdptrust.known_hosts", "version": 1, "hosts": [{"host": "x"}]}', "entry 1"),
    ],
)
def test_corrupt_store_is_refused_and_kept(tmp_path: Path, content: str, message: str) -> None:
    # Given a known-hosts file that is not what rdptrust writes
    path = tmp_path / "known_hosts.json"
    path.write_text(content)
    # Then loading names the file and the problem
    with pytest.raises(StoreError, match=message) as info:
        KnownHosts.load(path)
    assert str(path) in str(info.value)
    # And saving a fresh store over it is refused, leaving it as it was
    fresh = KnownHosts(path)
    fresh.add(pin_from_certificate(TARGET, HOST.cert, now=NOW))
    with pytest.raises(StoreError, match="will not overwrite"):
        fresh.save()
    assert path.read_text() == content


def test_tampered_entry_is_refused(tmp_path: Path) -> None:
    # Given a saved store whose fingerprint was edited to match another certificate
    store = store_with(tmp_path, TARGET)
    store.save()
    document = json.loads(store.path.read_text())
    document["hosts"][0]["sha256"] = fingerprint_sha256(RECREATED.cert)
    store.path.write_text(json.dumps(document))
    # Then the entry no longer loads
    with pytest.raises(StoreError, match="does not have its sha256"):
        KnownHosts.load(store.path)


def test_unreadable_store_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(StoreError, match="cannot read the known-hosts file"):
        KnownHosts.load(tmp_path / "dir.json")
    (tmp_path / "latin1.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(StoreError, match=r"latin1\.json"):
        KnownHosts.load(tmp_path / "latin1.json")


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a saved store
    store = store_with(tmp_path, TARGET)
    store.save()
    before = store.path.read_bytes()
    # When the final rename fails half-way through a later save
    store.add(pin_from_certificate(Target("other", 3389), HOST.cert, now=NOW))

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(StoreError, match="No space left"):
        store.save()
    monkeypatch.undo()
    # Then the old file is intact and no temporary file is left behind
    assert store.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "known_hosts.json",
        "known_hosts.json.lock",
    ]


def test_check_not_pinned_and_match(tmp_path: Path) -> None:
    store = store_with(tmp_path, TARGET)
    other = check_pin(store, Target("WIN-LAB01", 3390), HOST.cert)
    assert other.status is PinStatus.NOT_PINNED
    assert other.pin is None
    assert not other.looks_like_recreation
    match = check_pin(store, Target("win-lab01", 3389), HOST.cert)
    assert match.status is PinStatus.MATCH
    assert match.pin == store.get(TARGET)
    assert "matches" in match.explanation


def test_check_six_month_recreation(tmp_path: Path) -> None:
    store = store_with(tmp_path, TARGET)
    check = check_pin(store, TARGET, RECREATED.cert)
    assert check.status is PinStatus.CHANGED
    assert check.looks_like_recreation
    assert "six-month recreation" in check.explanation
    assert "had expired" in check.explanation
    assert fingerprint_sha256(HOST.cert) in check.explanation
    assert fingerprint_sha256(RECREATED.cert) in check.explanation
    assert "interception" not in check.explanation


@pytest.mark.parametrize(
    "served",
    [
        issue("WIN-LAB02", key=rsa_key(2048, 1)).cert,  # another name
        hierarchy("WIN-LAB01").leaf.cert,  # same name, CA-issued
        issue(
            "WIN-LAB01", key=rsa_key(2048, 1), issuer=issue("WIN-LAB01", key=rsa_key(2048, 2))
        ).cert,  # same names, signed by a foreign key
    ],
)
def test_check_unexpected_change(tmp_path: Path, served: object) -> None:
    store = store_with(tmp_path, TARGET)
    check = check_pin(store, TARGET, served)  # type: ignore[arg-type]
    assert check.status is PinStatus.CHANGED
    assert not check.looks_like_recreation
    assert "possible interception" in check.explanation


def test_check_same_key_renewed(tmp_path: Path) -> None:
    store = store_with(tmp_path, TARGET)
    renewed = issue("WIN-LAB01", not_before=NOW, days=365)  # same key as HOST
    check = check_pin(store, TARGET, renewed.cert)
    assert check.status is PinStatus.CHANGED
    assert not check.looks_like_recreation
    assert "pinned key" in check.explanation


def test_save_merges_with_what_another_command_saved(tmp_path: Path) -> None:
    # Given two stores read from the same file, each pinning another host
    path = tmp_path / "known_hosts.json"
    first, second = KnownHosts.load(path), KnownHosts.load(path)
    pin_a = pin_from_certificate(Target("a.lab.test", 3389), issue("a").cert)
    pin_b = pin_from_certificate(Target("b.lab.test", 3389), issue("b").cert)
    first.add(pin_a)
    second.add(pin_b)
    # When both save, one after the other
    first.save()
    second.save()
    # Then the file holds both, and so does the store that saved last
    assert [p.host for p in KnownHosts.load(path).pins()] == ["a.lab.test", "b.lab.test"]
    assert [p.host for p in second.pins()] == ["a.lab.test", "b.lab.test"]
    # and a removal is applied the same way
    first.remove(Target("b.lab.test", 3389))
    first.save()
    assert [p.host for p in KnownHosts.load(path).pins()] == ["a.lab.test"]
    # and pins given to the constructor are saved into a new file
    fresh = tmp_path / "fresh.json"
    KnownHosts(fresh, (pin_a,)).save()
    assert [p.host for p in KnownHosts.load(fresh).pins()] == ["a.lab.test"]
