"""rdptrust's own pinned-host store (Method 1): one trusted certificate per host and port.

The store is a versioned JSON document (default ``known_hosts.json`` under the user
data directory, see :func:`default_path`)::

    {
      "schema": "rdptrust.known_hosts",
      "version": 1,
      "hosts": [
        {"host": "win-lab01", "port": 3389, "sha256": "…", "subject": "CN=WIN-LAB01",
         "issuer": "CN=WIN-LAB01", "not_before": "2026-01-01T00:00:00Z",
         "not_after": "2026-07-01T00:00:00Z", "self_signed": true,
         "public_key_sha256": "…", "pinned_at": "2026-01-02T10:00:00Z",
         "certificate_pem": "-----BEGIN CERTIFICATE-----\\n…"}
      ]
    }

Host names compare case-insensitively (and IP addresses by value). The file is
written atomically with mode 0600: the list of hosts an admin manages is worth
keeping private. :meth:`KnownHosts.save` re-reads the file under a lock
(``known_hosts.json.lock``) and applies only this store's own changes to it, so two
``rdptrust trust`` run at once both keep their pin. A file that cannot be read is
never overwritten: loading it raises :class:`~rdptrust.errors.StoreError` naming the
file, and so does saving over it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import platformdirs
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from rdptrust.errors import PkiError, StoreError, UsageError
from rdptrust.files import PRIVATE_MODE, state_lock, write_atomic
from rdptrust.model.pin import Pin, PinCheck, PinStatus, host_key
from rdptrust.model.target import Target
from rdptrust.pki.facts import as_utc, certificate_facts, fingerprint_sha256, load_certificate

SCHEMA = "rdptrust.known_hosts"
VERSION = 1


def default_path() -> Path:
    """``known_hosts.json`` in rdptrust's user data directory (platformdirs)."""
    return Path(platformdirs.user_data_dir("rdptrust")) / "known_hosts.json"


def pin_from_certificate(
    target: Target, cert: x509.Certificate, *, now: dt.datetime | None = None
) -> Pin:
    """A pin of *cert* for *target*, stamped with *now* (default: the current time)."""
    facts = certificate_facts(cert, now=now)
    moment = as_utc(now)
    return Pin(
        host=target.host,
        port=target.port,
        sha256=facts.sha256,
        subject=facts.subject,
        issuer=facts.issuer,
        not_before=facts.not_before,
        not_after=facts.not_after,
        self_signed=facts.self_signed,
        public_key_sha256=facts.public_key_sha256,
        pinned_at=moment,
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    )


class KnownHosts:
    """The pinned-host store in memory; :meth:`save` writes it back."""

    def __init__(self, path: Path, pins: tuple[Pin, ...] = ()) -> None:
        self.path = path
        self._pins: dict[tuple[str, int], Pin] = {}
        #: Pins added (a Pin) or removed (None) since the store was read or saved.
        self._changes: dict[tuple[str, int], Pin | None] = {}
        for pin in pins:
            self.add(pin)

    @classmethod
    def load(cls, path: Path | None = None, *, must_exist: bool = False) -> KnownHosts:
        """Read the store at *path* (default :func:`default_path`).

        A missing file is an empty store, unless *must_exist*: then it is a StoreError
        (a store the user named that is not there is a mistake, not "no pins").
        """
        path = Path(path) if path is not None else default_path()
        document = _read_document(path)
        if document is None:
            if must_exist:
                raise StoreError(
                    f"the known-hosts file {path} does not exist ('rdptrust trust HOST "
                    "--known-hosts FILE' creates it)"
                )
            return cls(path)
        store = cls(path)
        # What the file holds is not a change of this store: save() re-reads the file.
        store._pins = {_key(p.host, p.port): p for p in _parse_document(path, document)}
        return store

    def get(self, target: Target) -> Pin | None:
        """The pin for *target*'s host and port, or None."""
        return self._pins.get(_key(target.host, target.port))

    def pins(self) -> tuple[Pin, ...]:
        """All pins, sorted by host and port."""
        return tuple(self._pins[k] for k in sorted(self._pins))

    def add(self, pin: Pin) -> None:
        """Pin a certificate, replacing any pin for the same host and port."""
        key = _key(pin.host, pin.port)
        self._pins[key] = pin
        self._changes[key] = pin

    def remove(self, target: Target) -> bool:
        """Forget *target*'s pin; False when there was none."""
        key = _key(target.host, target.port)
        self._changes[key] = None
        return self._pins.pop(key, None) is not None

    def save(self) -> None:
        """Write the store atomically (mode 0600); refuse to replace an unreadable file.

        Under the store's lock, the file as it is now is read again and this store's
        additions and removals are applied to it: pins another command saved meanwhile
        are kept.
        """
        with state_lock(self.path):
            existing = _read_document(self.path)
            current = (
                {}
                if existing is None
                else {_key(p.host, p.port): p for p in _parse_document(self.path, existing)}
            )
            for key, change in self._changes.items():
                if change is None:
                    current.pop(key, None)
                else:
                    current[key] = change
            self._pins = current
            self._write()
        self._changes.clear()

    def _write(self) -> None:
        document = {
            "schema": SCHEMA,
            "version": VERSION,
            "hosts": [_pin_to_json(pin) for pin in self.pins()],
        }
        write_atomic(self.path, json.dumps(document, indent=2) + "\n", mode=PRIVATE_MODE)

    def __len__(self) -> int:
        return len(self._pins)


def check_pin(store: KnownHosts, target: Target, cert: x509.Certificate) -> PinCheck:
    """Compare *cert* with the pin for *target*."""
    pin = store.get(target)
    if pin is None:
        return PinCheck(PinStatus.NOT_PINNED, None, False, f"no certificate is pinned for {target}")
    facts = certificate_facts(cert)
    if facts.sha256 == pin.sha256:
        return PinCheck(
            PinStatus.MATCH,
            pin,
            False,
            f"the certificate matches the one pinned for {target} on {pin.pinned_at:%Y-%m-%d}",
        )
    changed = (
        f"the certificate of {target} changed: pinned SHA-256 {pin.sha256} "
        f"(subject {pin.subject}, issuer {pin.issuer}, valid until {pin.not_after:%Y-%m-%d}), "
        f"now SHA-256 {facts.sha256} (subject {facts.subject}, issuer {facts.issuer}, "
        f"valid {facts.not_before:%Y-%m-%d} to {facts.not_after:%Y-%m-%d})"
    )
    same_subject = facts.subject == pin.subject
    both_self_signed = facts.self_signed and pin.self_signed
    new_key = facts.public_key_sha256 != pin.public_key_sha256
    if same_subject and both_self_signed and new_key:
        when = (
            "; the pinned one had expired by then"
            if pin.not_after <= facts.not_before + dt.timedelta(days=1)
            else ""
        )
        return PinCheck(
            PinStatus.CHANGED,
            pin,
            True,
            f"{changed}. It looks like Windows' six-month recreation of its self-signed "
            f"RDP certificate (same subject, self-signed, new key{when}); confirm the new "
            f"SHA-1 thumbprint {facts.sha1} on the host, then pin it again",
        )
    if same_subject and both_self_signed:
        return PinCheck(
            PinStatus.CHANGED,
            pin,
            False,
            f"{changed}. It is self-signed with the pinned key, so whoever holds the host's "
            "private key made it; pin it again if the host's certificate was renewed",
        )
    return PinCheck(
        PinStatus.CHANGED,
        pin,
        False,
        f"{changed}. This is not Windows' self-signed recreation: unless the host's "
        "certificate was replaced on purpose, treat it as a possible interception and "
        "check the thumbprint on the host before trusting it",
    )


def _key(host: str, port: int) -> tuple[str, int]:
    return host_key(host), port


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _pin_to_json(pin: Pin) -> dict[str, Any]:
    return {
        "host": pin.host,
        "port": pin.port,
        "sha256": pin.sha256,
        "subject": pin.subject,
        "issuer": pin.issuer,
        "not_before": _time(pin.not_before),
        "not_after": _time(pin.not_after),
        "self_signed": pin.self_signed,
        "public_key_sha256": pin.public_key_sha256,
        "pinned_at": _time(pin.pinned_at),
        "certificate_pem": pin.certificate_pem,
    }


def _read_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StoreError(f"cannot read the known-hosts file {path}: {reason}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreError(
            f"the known-hosts file {path} is not valid JSON (line {exc.lineno}, "
            f"column {exc.colno}); fix or move it away, rdptrust will not overwrite it"
        ) from exc


def _parse_document(path: Path, document: Any) -> tuple[Pin, ...]:
    def bad(reason: str) -> StoreError:
        return StoreError(
            f"the known-hosts file {path} is unusable: {reason}; "
            "fix or move it away, rdptrust will not overwrite it"
        )

    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise bad(f"it is not an rdptrust known-hosts file (schema {SCHEMA!r} expected)")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise bad("its version is missing")
    if version > VERSION:
        raise bad(f"it has version {version}, written by a newer rdptrust (this one reads 1)")
    if version < 1:
        raise bad(f"unknown version {version}")
    hosts = document.get("hosts")
    if not isinstance(hosts, list):
        raise bad("'hosts' is not a list")
    pins = []
    for index, entry in enumerate(hosts):
        try:
            pins.append(_pin_from_json(entry))
        except (KeyError, TypeError, ValueError, PkiError, UsageError) as exc:
            raise bad(f"entry {index + 1} is malformed ({exc})") from exc
    return tuple(pins)


def _pin_from_json(entry: Any) -> Pin:
    if not isinstance(entry, dict):
        raise TypeError("not an object")

    def text(name: str) -> str:
        value = entry[name]
        if not isinstance(value, str):
            raise TypeError(f"{name} is not a string")
        return value

    def when(name: str) -> dt.datetime:
        value = dt.datetime.fromisoformat(text(name).replace("Z", "+00:00"))
        if value.tzinfo is None:
            raise ValueError(f"{name} has no time zone")
        return value.astimezone(dt.UTC)

    port = entry["port"]
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError("port is not a number")
    self_signed = entry["self_signed"]
    if not isinstance(self_signed, bool):
        raise TypeError("self_signed is not true or false")
    pin = Pin(
        host=text("host"),
        port=port,
        sha256=text("sha256").lower(),
        subject=text("subject"),
        issuer=text("issuer"),
        not_before=when("not_before"),
        not_after=when("not_after"),
        self_signed=self_signed,
        public_key_sha256=text("public_key_sha256").lower(),
        pinned_at=when("pinned_at"),
        certificate_pem=text("certificate_pem"),
    )
    Target(pin.host, pin.port)  # validates host and port
    try:
        certificate = load_certificate(pin.certificate_pem.encode("ascii"))
    except PkiError:
        # The decoder's own words (ParseError { kind: ... }) mean nothing to a user.
        raise ValueError("its certificate_pem is not a readable PEM certificate") from None
    if fingerprint_sha256(certificate) != pin.sha256:
        raise ValueError("its certificate_pem does not have its sha256 fingerprint")
    return pin
