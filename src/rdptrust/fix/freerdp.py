"""FreeRDP's own certificate stores, so ``xfreerdp /cert:tofu`` trusts a pinned host.

- FreeRDP 2: ``~/.config/freerdp/known_hosts2``, a line per host:
  ``<host> <port> <sha256 lowercase colon hex> <base64 subject> <base64 issuer>``, where
  subject and issuer are OpenSSL's one-line form (``X509_NAME_print_ex`` with
  ``XN_FLAG_ONELINE``), e.g. ``CN = WIN-LAB01``.
- FreeRDP 3: ``~/.config/freerdp/server/<host>_<port>.pem`` holding the leaf in PEM
  (host lowercased, ``:`` replaced by ``.``).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

import rdptrust.files
from rdptrust.errors import StoreError, UsageError
from rdptrust.files import state_lock, write_atomic

# OpenSSL short names where they differ from RFC 4514's attribute names.
_OPENSSL_SHORT_NAMES = {
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.GIVEN_NAME: "GN",
    NameOID.SURNAME: "SN",
    NameOID.TITLE: "title",
    NameOID.BUSINESS_CATEGORY: "businessCategory",
    NameOID.POSTAL_CODE: "postalCode",
    NameOID.STREET_ADDRESS: "street",
    NameOID.USER_ID: "UID",
    NameOID.DOMAIN_COMPONENT: "DC",
}
_QUOTE_CHARS = set(',+<>;"\\')


def _oneline_value(value: str) -> str:
    quote = bool(set(value) & _QUOTE_CHARS) or value[:1] in ("#", " ") or value.endswith(" ")
    out = []
    for byte in value.encode("utf-8"):
        ch = chr(byte)
        if byte < 0x20 or byte >= 0x7F:
            out.append(f"\\{byte:02X}")
        elif ch in '"\\':
            out.append("\\" + ch)
        else:
            out.append(ch)
    text = "".join(out)
    return f'"{text}"' if quote else text


def openssl_oneline(name: x509.Name) -> str:
    """*name* as OpenSSL's ``-nameopt oneline`` prints it: certificate order, ``A = v, B = w``."""
    parts = []
    for rdn in name.rdns:
        attrs = []
        for attr in rdn:
            short = _OPENSSL_SHORT_NAMES.get(attr.oid) or attr.rfc4514_attribute_name
            value = attr.value if isinstance(attr.value, str) else attr.value.hex()
            attrs.append(f"{short} = {_oneline_value(value)}")
        parts.append(" + ".join(attrs))
    return ", ".join(parts)


def _check_host(host: str) -> str:
    if not host or any(c.isspace() for c in host) or "/" in host:
        raise UsageError(f"{host!r} cannot be written into a FreeRDP store")
    return host.lower()


def known_hosts2_line(host: str, port: int, certificate: x509.Certificate) -> str:
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex(":")
    subject = base64.b64encode(openssl_oneline(certificate.subject).encode()).decode()
    issuer = base64.b64encode(openssl_oneline(certificate.issuer).encode()).decode()
    return f"{_check_host(host)} {port} {fingerprint} {subject} {issuer}"


def update_known_hosts2(path: Path, host: str, port: int, certificate: x509.Certificate) -> Path:
    """Add or replace the line for *host*:*port* in a known_hosts2 file, atomically."""
    line = known_hosts2_line(host, port, certificate)
    key = (_check_host(host), str(port))
    with state_lock(path):
        try:
            existing = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc
        kept = [old for old in existing if old.startswith("#") or tuple(old.split()[:2]) != key]
        kept.append(line)
        # The file keeps its mode (files.write_atomic): a known_hosts2 its owner made
        # 0600 stays 0600.
        return write_atomic(path, "\n".join(kept) + "\n")


def freerdp3_store_path(config_dir: Path, host: str, port: int) -> Path:
    name = _check_host(host).replace(":", ".")
    return config_dir / "server" / f"{name}_{port}.pem"


def write_freerdp3_entry(
    config_dir: Path, host: str, port: int, certificate: x509.Certificate
) -> Path:
    return write_atomic(
        freerdp3_store_path(config_dir, host, port),
        certificate.public_bytes(serialization.Encoding.PEM),
    )


def default_freerdp_dir() -> Path:
    """Where FreeRDP keeps its stores: ``<config home>/freerdp``, as winpr finds it.

    winpr's ``GetKnownSubPath(KNOWN_PATH_XDG_CONFIG_HOME, "freerdp")``: on Windows the
    roaming application data folder (``%APPDATA%``); elsewhere, macOS included,
    ``$XDG_CONFIG_HOME`` or else ``~/.config``.
    """
    if rdptrust.files.WINDOWS:
        appdata = os.environ.get("APPDATA")
        base = Path(appdata) if appdata else Path.home() / "AppData" / "Roaming"
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME")
        base = Path(xdg) if xdg else Path.home() / ".config"
    return base / "freerdp"
