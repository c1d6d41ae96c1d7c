"""The web configuration file Prometheus exporters share (exporter-toolkit's ``web.yml``).

::

    tls_server_config:
      cert_file: exporter.crt          # relative names are read next to web.yml
      key_file: exporter.key
      client_auth_type: RequireAndVerifyClientCert   # or NoClientCert (default),
                                                     # VerifyClientCertIfGiven
      client_ca_file: clients-ca.crt   # needed by the two verifying types
      min_version: TLS12               # TLS10, TLS11, TLS12 (default), TLS13
      max_version: TLS13
    basic_auth_users:
      prometheus: $2y$10$...           # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\\n')

The keys and their meaning are exporter-toolkit's (docs/web-configuration.md); keys it
has that rdptrust does not implement (cipher suites, curves, HTTP/2, extra headers,
``RequestClientCert``, ``RequireAnyClientCert``) are refused with a UsageError rather than
silently ignored. A password is checked against its bcrypt hash in a worker thread (a
check costs tens of milliseconds on purpose); a pair that matched once is remembered
by its SHA-256, as exporter-toolkit does, so a scrape does not pay that cost each time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from rdptrust.errors import UsageError

MAX_WEB_CONFIG_BYTES = 1 << 20
#: Pairs that matched, remembered at most (oldest forgotten first).
MAX_REMEMBERED_LOGINS = 256

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_KEYS = {
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
}
#: A bcrypt hash of a random password: unknown users are checked against it, so a
#: wrong user name takes as long as a wrong password.
_DUMMY_HASH = b"$2b$10$YEg9bmEDNxcagcmjySGA3.iaeHLaryQiPEpCxTwDIySTEwr91vzBq"


@dataclass(frozen=True)
class TlsSettings:
    """``tls_server_config``: files already resolved against the web.yml directory."""

    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str | None = None

    def context(self) -> ssl.SSLContext:
        """A server SSL context; UsageError when a file cannot be used."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = _TLS_VERSIONS[self.min_version]
        if self.max_version is not None:
            context.maximum_version = _TLS_VERSIONS[self.max_version]
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
            if self.client_ca_file is not None:
                context.load_verify_locations(cafile=str(self.client_ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"web config: cannot load the TLS files: {exc}") from exc
        context.verify_mode = _CLIENT_AUTH[self.client_auth_type]
        return context


@dataclass(frozen=True)
class WebConfig:
    """TLS (None: plain HTTP) and basic-auth users (empty: no authentication)."""

    tls: TlsSettings | None = None
    users: dict[str, bytes] = field(default_factory=dict)
    source: Path | None = None


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes; safe to share."""

    def __init__(self, users: dict[str, bytes]) -> None:
        self._users = dict(users)
        self._good: dict[bytes, None] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    async def allows(self, header: str | None) -> bool:
        """True when *header* (the Authorization value) names a user and its password."""
        if not self._users:
            return True
        if header is None:
            return False
        scheme, _, encoded = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user_raw, sep, password = decoded.partition(b":")
        if not sep:
            return False
        user = user_raw.decode("utf-8", "replace")
        hashed = self._users.get(user)
        key = hashlib.sha256(user_raw + b"\0" + password + b"\0" + (hashed or b"")).digest()
        with self._lock:
            if hashed is not None and key in self._good:
                return True
        ok = await asyncio.to_thread(_check, password, hashed or _DUMMY_HASH)
        ok = ok and hashed is not None
        if ok:
            with self._lock:
                self._good[key] = None
                while len(self._good) > MAX_REMEMBERED_LOGINS:
                    del self._good[next(iter(self._good))]
        return ok


def _check(password: bytes, hashed: bytes) -> bool:
    try:
        return bool(bcrypt.checkpw(password, hashed))
    except ValueError:  # a hash bcrypt cannot read never matches
        return False


def load_web_config(path: Path) -> WebConfig:
    """Read and validate *path*; UsageError names the first bad key."""
    where = f"web config {path}"
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_WEB_CONFIG_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the {where}: {exc.strerror or exc}") from exc
    if len(data) > MAX_WEB_CONFIG_BYTES:
        raise UsageError(f"the {where} is larger than {MAX_WEB_CONFIG_BYTES} bytes")
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise UsageError(f"the {where} is not valid YAML") from exc
    return parse_web_config(document, path.parent, where)


def parse_web_config(document: Any, base: Path, where: str = "web config") -> WebConfig:
    """Validate a loaded web.yml document; relative file names are taken from *base*."""
    if document is None:
        return WebConfig()
    if not isinstance(document, dict):
        raise UsageError(f"{where}: expected a mapping")
    for key in document:
        if key not in ("tls_server_config", "basic_auth_users"):
            raise UsageError(
                f"{where}: key {key!r} is not supported (rdptrust reads tls_server_config "
                "and basic_auth_users)"
            )
    tls = _tls(document.get("tls_server_config"), base, f"{where}: tls_server_config")
    users = _users(document.get("basic_auth_users"), f"{where}: basic_auth_users")
    return WebConfig(tls, users, None)


def _tls(value: Any, base: Path, where: str) -> TlsSettings | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected a mapping")
    for key in value:
        if key not in _TLS_KEYS:
            raise UsageError(f"{where}: key {key!r} is not supported by rdptrust")

    def file(key: str) -> Path | None:
        text = value.get(key)
        if text is None or text == "":
            return None
        if not isinstance(text, str):
            raise UsageError(f"{where}.{key}: expected a file name")
        return base / text

    cert, key = file("cert_file"), file("key_file")
    if cert is None or key is None:
        raise UsageError(f"{where}: cert_file and key_file are both required")
    auth = value.get("client_auth_type") or "NoClientCert"
    if auth not in _CLIENT_AUTH:
        raise UsageError(
            f"{where}.client_auth_type: {auth!r} is not supported (give {', '.join(_CLIENT_AUTH)})"
        )
    ca = file("client_ca_file")
    if auth != "NoClientCert" and ca is None:
        raise UsageError(f"{where}: client_auth_type {auth} needs client_ca_file")
    versions = {}
    for name in ("min_version", "max_version"):
        text = value.get(name)
        if text is not None and text not in _TLS_VERSIONS:
            raise UsageError(f"{where}.{name}: expected one of {', '.join(_TLS_VERSIONS)}")
        versions[name] = text
    return TlsSettings(
        cert,
        key,
        auth,
        ca,
        versions["min_version"] or "TLS12",
        versions["max_version"],
    )


def _users(value: Any, where: str) -> dict[str, bytes]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected a mapping of user names to bcrypt hashes")
    users: dict[str, bytes] = {}
    for user, hashed in value.items():
        if not isinstance(user, str) or not user or ":" in user:
            raise UsageError(f"{where}: bad user name {user!r}")
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise UsageError(f"{where}.{user}: expected a bcrypt hash ($2y$..., $2b$...)")
        users[user] = hashed.encode("ascii", "replace")
    return users
