"""Read the live client state of the Windows machine rdptrust runs on (standard library).

Certificate stores through :func:`ssl.enum_certificates` (Root, AuthRoot, CA, Disallowed;
Python merges the machine's and the user's stores), the policy and caches through
:mod:`winreg`:

- ``HKLM\\SOFTWARE\\Policies\\Microsoft\\SystemCertificates\\AuthRoot``:
  ``DisableRootAutoUpdate``, ``EnableDisallowedCertAutoUpdate`` (DWORD);
- ``HKLM\\SOFTWARE\\Microsoft\\SystemCertificates\\AuthRoot\\AutoUpdate``:
  ``LastSyncTime`` (FILETIME), ``RootDirUrl``, whether ``EncodedCtl`` exists;
- ChainEngine\\Config (the Group Policy path first, then the one ``certutil -setreg
  chain\\…`` writes): ``ChainUrlRetrievalTimeoutMilliseconds``,
  ``ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds``;
- ``…\\Internet Settings\\Connections\\WinHttpSettings``: the static WinHTTP proxy
  (:func:`rdptrust.protocol.windows_registry.parse_winhttp_settings`).

Everything Windows-only sits behind the module-level seams :func:`is_windows`,
:func:`winreg_module`, :func:`enum_certificates` and :func:`windows_version`, so this
module imports on any system and tests drive it with fakes. Nothing is written.
"""

from __future__ import annotations

import datetime as dt
import importlib
import platform
import ssl
import sys
from typing import Any

from rdptrust.errors import DataError, PkiError, RemoteProtocolError, UsageError
from rdptrust.model.client_state import ClientState, WinHttpProxy, client_profile
from rdptrust.pki.facts import load_certificate
from rdptrust.protocol.windows_registry import parse_filetime, parse_winhttp_settings

POLICY_AUTHROOT = r"SOFTWARE\Policies\Microsoft\SystemCertificates\AuthRoot"
AUTO_UPDATE = r"SOFTWARE\Microsoft\SystemCertificates\AuthRoot\AutoUpdate"
CHAIN_CONFIG_POLICY = r"SOFTWARE\Policies\Microsoft\SystemCertificates\ChainEngine\Config"
CHAIN_CONFIG_LOCAL = (
    r"SOFTWARE\Microsoft\Cryptography\OID\EncodingType 0"
    r"\CertDllCreateCertificateChainEngine\Config"
)
CONNECTIONS = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections"
_NOT_WINDOWS = (
    "client-state reads the certificate stores and policy of the Windows machine it runs "
    "on; on this system, write the PowerShell script with 'rdptrust client-state --script' "
    "and run it on the client"
)


def is_windows() -> bool:
    """Seam: whether this is Windows (where the live state can be read)."""
    return sys.platform == "win32"


def winreg_module() -> Any:
    """Seam: the standard library's :mod:`winreg` (Windows only)."""
    return importlib.import_module("winreg")


def enum_certificates(store: str) -> list[tuple[bytes, str, Any]]:
    """Seam: :func:`ssl.enum_certificates` of *store* (Windows only)."""
    found: list[tuple[bytes, str, Any]] = getattr(ssl, "enum_certificates")(store)  # noqa: B009
    return found


def windows_version() -> str | None:
    """Seam: ``major.minor.build`` of this Windows, None when it cannot be told."""
    return platform.version() or None


def _value(winreg: Any, path: str, name: str) -> Any:
    try:
        key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, path, 0, winreg.KEY_READ)
    except OSError:
        return None
    try:
        value, _kind = winreg.QueryValueEx(key, name)
    except OSError:
        return None
    finally:
        winreg.CloseKey(key)
    return value


def _dword_flag(value: Any) -> bool | None:
    return bool(value) if isinstance(value, int) else None


def _millis(winreg: Any, name: str) -> int | None:
    for path in (CHAIN_CONFIG_POLICY, CHAIN_CONFIG_LOCAL):
        value = _value(winreg, path, name)
        if isinstance(value, int) and 0 <= value <= 0xFFFFFFFF:
            return value
    return None


def _store(name: str) -> tuple[bytes, ...]:
    found: dict[bytes, None] = {}
    for der, encoding, trust in enum_certificates(name):
        del trust  # the script cannot see it either: both list the store as it is
        if encoding != "x509_asn":
            continue
        try:
            load_certificate(bytes(der))
        except PkiError:
            continue  # a store can hold what no decoder reads: left out, not fatal
        found.setdefault(bytes(der), None)
    return tuple(found)


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    if any(not c.isprintable() for c in value):
        return None  # not a usable URL or version: as if unset
    return value.strip()


def read_live_client_state(now: dt.datetime | None = None) -> ClientState:
    """This Windows machine's client state; UsageError on any other system.

    A malformed ``WinHttpSettings`` or ``LastSyncTime`` is a
    :class:`~rdptrust.errors.DataError` naming the value, not a silent guess.
    """
    if not is_windows():
        raise UsageError(_NOT_WINDOWS)
    winreg = winreg_module()
    blob = _value(winreg, CONNECTIONS, "WinHttpSettings")
    try:
        proxy = parse_winhttp_settings(bytes(blob)) if isinstance(blob, bytes) else None
        sync = _value(winreg, AUTO_UPDATE, "LastSyncTime")
        last_sync = parse_filetime(bytes(sync)) if isinstance(sync, bytes) else None
        # whole seconds, as the PowerShell script writes it
        last_sync = last_sync.replace(microsecond=0) if last_sync is not None else None
    except RemoteProtocolError as exc:
        raise DataError(f"the client's registry: {exc}") from exc
    version = _text(windows_version())
    try:
        profile = client_profile(version)
    except ValueError:
        version, profile = None, client_profile(None)
    state = ClientState(
        roots=_store("ROOT"),
        authroot=_store("AuthRoot"),
        intermediates=_store("CA"),
        disallowed=_store("Disallowed"),
        authroot_ctl_present=_value(winreg, AUTO_UPDATE, "EncodedCtl") is not None,
        authroot_last_sync=last_sync,
        disable_root_auto_update=_dword_flag(
            _value(winreg, POLICY_AUTHROOT, "DisableRootAutoUpdate")
        ),
        enable_disallowed_cert_auto_update=_dword_flag(
            _value(winreg, POLICY_AUTHROOT, "EnableDisallowedCertAutoUpdate")
        ),
        root_dir_url=_text(_value(winreg, AUTO_UPDATE, "RootDirUrl")),
        url_retrieval_timeout_ms=_millis(winreg, "ChainUrlRetrievalTimeoutMilliseconds"),
        rev_accumulative_timeout_ms=_millis(
            winreg, "ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds"
        ),
        proxy=proxy or WinHttpProxy(),
        os_version=version,
        client=profile,
        collected_at=(now or dt.datetime.now(dt.UTC)).replace(microsecond=0),
    )
    return state
