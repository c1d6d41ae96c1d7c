"""Certificate names as text that is safe to show: RFC 4514, control characters escaped."""

from __future__ import annotations

import ipaddress
import re

from cryptography import x509
from cryptography.x509.oid import NameOID

from rdptrust.model.text import BIDI_CONTROLS

#: Controls and bidi overrides (``gpj.exe`` shown as ``exe.jpg``); see model/text.py.
_CONTROL = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f\u2028\u2029{BIDI_CONTROLS}]")


def printable_text(text: str) -> str:
    """*text* with control and bidi characters written as RFC 4514 hex escapes (``\\1B``).

    Certificate text reaches terminals, logs and scripts; escaped this way a subject such
    as ``ESC ] 0 ; … BEL`` cannot retitle a window, change colours or overwrite a line.
    """
    return _CONTROL.sub(lambda m: "".join(f"\\{b:02X}" for b in m.group().encode()), text)


def name_text(name: x509.Name) -> str:
    """A distinguished name as RFC 4514 text, control characters escaped."""
    return printable_text(_raw_name_text(name))


def _raw_name_text(name: x509.Name) -> str:
    try:
        return name.rfc4514_string()
    except Exception:
        # Attribute values of unexpected types; keep what can be shown.
        parts = []
        for rdn in reversed(list(name.rdns)):
            parts.append("+".join(f"{a.oid.dotted_string}={a.value!r}" for a in rdn))
        return ",".join(parts)


def name_common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not values:
        return None
    value = values[-1].value
    return printable_text(value if isinstance(value, str) else value.decode("utf-8", "replace"))


def general_name_text(name: x509.GeneralName) -> str:
    return printable_text(_raw_general_name(name))


def _raw_general_name(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.IPAddress):
        address = name.value
        if isinstance(address, ipaddress.IPv4Network | ipaddress.IPv6Network):
            return f"IP:{address.with_prefixlen}"
        return f"IP:{address}"
    if isinstance(name, x509.RFC822Name):
        return f"email:{name.value}"
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"URI:{name.value}"
    if isinstance(name, x509.DirectoryName):
        return f"DirName:{name_text(name.value)}"
    if isinstance(name, x509.RegisteredID):
        return f"RID:{name.value.dotted_string}"
    if isinstance(name, x509.OtherName):
        return f"othername:{name.type_id.dotted_string}"
    return f"other:{name!r}"
