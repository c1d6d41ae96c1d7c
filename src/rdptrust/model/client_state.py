"""A Windows client's own trust stores and chain-engine policy, as one value.

``rdptrust client-state`` reads it on a Windows client (or its PowerShell script does)
into the JSON document ``rdptrust.client-state/1``; ``diagnose --client-state FILE``
judges with it instead of this machine's trust (:mod:`rdptrust.engine.client_state`).

The document (schema ``report/schemas/client-state.schema.json``)::

    {"schema": "rdptrust.client-state/1",
     "collected_at": "2026-05-01T12:00:00Z" | null,
     "os": {"version": "10.0.19045" | null, "client": "win7" | "win8.1" | "win10"},
     "stores": {"root": [DER, ...], "authroot": [...], "ca": [...], "disallowed": [...]},
     "authroot_ctl": {"present": bool, "last_sync": "…Z" | null},
     "auto_update": {"disable_root_auto_update": bool | null,
                "enable_disallowed_cert_auto_update": bool | null,
                "root_dir_url": str | null},
     "chain_engine": {"url_retrieval_timeout_ms": int | null,
                      "rev_accumulative_url_retrieval_timeout_ms": int | null},
     "winhttp_proxy": {"server": str | null, "bypass": str | null}}

Certificates are base64 DER (what PowerShell's ``[Convert]::ToBase64String`` gives).
``null`` everywhere means "not set on the client" (Windows' default applies). Parsing
is strict: an unknown key, a missing key or a wrong type is a
:class:`~rdptrust.errors.DataError` naming where, never a guess.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rdptrust.errors import DataError
from rdptrust.model.windows import ClientProfile

SCHEMA = "rdptrust.client-state/1"
#: Most certificates one store may list (real Root stores hold a few hundred).
MAX_STORE_CERTIFICATES = 20_000
#: Longest string field (a URL, a proxy list).
MAX_TEXT = 4096
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")


@dataclass(frozen=True)
class WinHttpProxy:
    """WinHTTP's static proxy (``netsh winhttp set proxy``): ``server`` None = direct.

    ``server`` is as netsh takes it: ``host:port``, or ``http=host:port;https=…``;
    ``bypass`` the bypass list (``<local>;*.corp``), None when there is none.
    """

    server: str | None = None
    bypass: str | None = None


@dataclass(frozen=True)
class ClientState:
    """What one Windows client trusts and how its chain engine is set.

    ``roots`` is the LocalMachine Root store (including roots Group Policy deploys),
    ``authroot`` the third-party roots Automatic Root Update installed, ``intermediates``
    the CA store, ``disallowed`` the Disallowed store (DER each). ``authroot_ctl_present``
    says whether a cached trusted-root CTL (``AutoUpdate\\EncodedCtl``) exists and
    ``authroot_last_sync`` when it was last synced (None: never, or unknown). Policies
    are None when not set: ``disable_root_auto_update`` (``DisableRootAutoUpdate``),
    ``enable_disallowed_cert_auto_update`` (``EnableDisallowedCertAutoUpdate``),
    ``root_dir_url`` (``RootDirUrl``), the chain-engine time-outs in milliseconds
    (``ChainUrlRetrievalTimeoutMilliseconds``,
    ``ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds``). ``os_version`` is
    ``major.minor.build`` (None: unknown), ``client`` the model's profile for it.
    """

    roots: tuple[bytes, ...] = ()
    authroot: tuple[bytes, ...] = ()
    intermediates: tuple[bytes, ...] = ()
    disallowed: tuple[bytes, ...] = ()
    authroot_ctl_present: bool = False
    authroot_last_sync: dt.datetime | None = None
    disable_root_auto_update: bool | None = None
    enable_disallowed_cert_auto_update: bool | None = None
    root_dir_url: str | None = None
    url_retrieval_timeout_ms: int | None = None
    rev_accumulative_timeout_ms: int | None = None
    proxy: WinHttpProxy = field(default_factory=WinHttpProxy)
    os_version: str | None = None
    client: ClientProfile = ClientProfile.WIN10
    collected_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        for name in ("url_retrieval_timeout_ms", "rev_accumulative_timeout_ms"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")


def client_profile(version: str | None) -> ClientProfile:
    """The model's profile for a Windows version ``major.minor[.build]`` (None: Windows 10).

    6.1 is Windows 7 / 2008 R2, 6.2 and 6.3 Windows 8 / 8.1 (2012, 2012 R2: the split
    trusted and untrusted switches came with 8.1), 10.0 Windows 10 and later.
    """
    if version is None:
        return ClientProfile.WIN10
    match = re.match(r"^(\d+)\.(\d+)", version)
    if match is None:
        raise ValueError(f"{version!r} is not a Windows version (major.minor.build)")
    major, minor = int(match.group(1)), int(match.group(2))
    if (major, minor) < (6, 2):
        return ClientProfile.WIN7
    if major < 10:
        return ClientProfile.WIN81
    return ClientProfile.WIN10


def parse_client_state(document: Any, where: str = "client state") -> ClientState:
    """The :class:`ClientState` in a decoded ``rdptrust.client-state/1`` document.

    Raises :class:`DataError` with *where* and the offending key for anything else.
    """
    if isinstance(document, dict) and document.get("schema", SCHEMA) != SCHEMA:
        # another document altogether: say that, not which of its keys is unknown
        raise DataError(f"{where}: schema is {document['schema']!r}, expected {SCHEMA!r}")
    top = _object(
        document,
        where,
        {
            "schema",
            "collected_at",
            "os",
            "stores",
            "authroot_ctl",
            "auto_update",
            "chain_engine",
            "winhttp_proxy",
        },
    )
    if top["schema"] != SCHEMA:
        raise DataError(f"{where}: schema is {top['schema']!r}, expected {SCHEMA!r}")
    os_part = _object(top["os"], f"{where}: os", {"version", "client"})
    version = _text(os_part["version"], f"{where}: os.version", optional=True)
    try:
        client = ClientProfile(os_part["client"])
    except ValueError:
        names = ", ".join(p.value for p in ClientProfile)
        raise DataError(f"{where}: os.client must be one of {names}") from None
    stores = _object(top["stores"], f"{where}: stores", {"root", "authroot", "ca", "disallowed"})
    ctl = _object(top["authroot_ctl"], f"{where}: authroot_ctl", {"present", "last_sync"})
    policy = _object(
        top["auto_update"],
        f"{where}: auto_update",
        {"disable_root_auto_update", "enable_disallowed_cert_auto_update", "root_dir_url"},
    )
    engine = _object(
        top["chain_engine"],
        f"{where}: chain_engine",
        {"url_retrieval_timeout_ms", "rev_accumulative_url_retrieval_timeout_ms"},
    )
    proxy = _object(top["winhttp_proxy"], f"{where}: winhttp_proxy", {"server", "bypass"})
    return ClientState(
        roots=_ders(stores["root"], f"{where}: stores.root"),
        authroot=_ders(stores["authroot"], f"{where}: stores.authroot"),
        intermediates=_ders(stores["ca"], f"{where}: stores.ca"),
        disallowed=_ders(stores["disallowed"], f"{where}: stores.disallowed"),
        authroot_ctl_present=_flag(ctl["present"], f"{where}: authroot_ctl.present"),
        authroot_last_sync=_moment(ctl["last_sync"], f"{where}: authroot_ctl.last_sync"),
        disable_root_auto_update=_flag(
            policy["disable_root_auto_update"],
            f"{where}: auto_update.disable_root_auto_update",
            True,
        ),
        enable_disallowed_cert_auto_update=_flag(
            policy["enable_disallowed_cert_auto_update"],
            f"{where}: auto_update.enable_disallowed_cert_auto_update",
            True,
        ),
        root_dir_url=_text(
            policy["root_dir_url"], f"{where}: auto_update.root_dir_url", optional=True
        ),
        url_retrieval_timeout_ms=_millis(
            engine["url_retrieval_timeout_ms"], f"{where}: chain_engine.url_retrieval_timeout_ms"
        ),
        rev_accumulative_timeout_ms=_millis(
            engine["rev_accumulative_url_retrieval_timeout_ms"],
            f"{where}: chain_engine.rev_accumulative_url_retrieval_timeout_ms",
        ),
        proxy=WinHttpProxy(
            server=_text(proxy["server"], f"{where}: winhttp_proxy.server", optional=True),
            bypass=_text(proxy["bypass"], f"{where}: winhttp_proxy.bypass", optional=True),
        ),
        os_version=version,
        client=client,
        collected_at=_moment(top["collected_at"], f"{where}: collected_at"),
    )


def _object(value: Any, where: str, keys: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise DataError(f"{where}: expected an object")
    unknown = sorted(str(k) for k in value if k not in keys)
    if unknown:
        raise DataError(f"{where}: unknown key {unknown[0]!r}")
    missing = sorted(keys - set(value))
    if missing:
        raise DataError(f"{where}: missing key {missing[0]!r}")
    return value


def _flag(value: Any, where: str, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        raise DataError(f"{where}: expected true or false" + (" or null" if optional else ""))
    return value


def _text(value: Any, where: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise DataError(f"{where}: expected a non-empty string of at most {MAX_TEXT} characters")
    if any(not c.isprintable() for c in value):
        raise DataError(f"{where}: contains control characters")
    return value


def _millis(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF:
        raise DataError(f"{where}: expected milliseconds (a whole number from 0) or null")
    return value


def _moment(value: Any, where: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _TIMESTAMP.match(value):
        raise DataError(f"{where}: expected an RFC 3339 UTC time like 2026-05-01T12:00:00Z")
    try:
        return dt.datetime.fromisoformat(value.removesuffix("Z")).replace(tzinfo=dt.UTC)
    except ValueError:
        raise DataError(f"{where}: {value!r} is not a real date and time") from None


def _ders(value: Any, where: str) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise DataError(f"{where}: expected a list of base64 DER certificates")
    if len(value) > MAX_STORE_CERTIFICATES:
        raise DataError(f"{where}: more than {MAX_STORE_CERTIFICATES} certificates")
    found: list[bytes] = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise DataError(f"{where}[{index}]: expected a base64 string")
        try:
            der = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise DataError(f"{where}[{index}]: not base64") from None
        # DER of a certificate starts with a SEQUENCE; the certificate itself is read in pki
        if not der.startswith(b"\x30"):
            raise DataError(f"{where}[{index}]: not a DER certificate")
        found.append(der)
    return tuple(found)
