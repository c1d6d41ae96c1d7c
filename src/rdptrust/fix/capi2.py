"""The fixes for waits a client recorded in its CAPI2 log (``rdptrust capi2``).

The fix ids are the catalog's (:data:`rdptrust.model.catalog.STALL_FIXES`, one list per
retrieval purpose), so a recorded root-list wait gets the fixes ``diagnose`` offers for
a predicted one. Without the host's certificate the commands cannot be written here:
each fix carries its title and the ``rdptrust`` command that writes it for the host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from rdptrust.model.catalog import STALL_FIXES, FixId
from rdptrust.model.retrieval import Purpose

#: Each stall fix's title (as :func:`rdptrust.fix.advice.fixes_for` words it) and how
#: to get its commands for one host.
STALL_FIX_TEXT: Mapping[FixId, tuple[str, str]] = MappingProxyType(
    {
        FixId.METHOD1_TRUST_HOST_CERTIFICATE: (
            "Method 1: trust the host's own certificate on the clients",
            "rdptrust trust HOST --out trust-HOST",
        ),
        FixId.TRUST_ISSUING_CA: (
            "Make the clients trust the issuing CA",
            "certutil -addstore -f Root root-ca.cer (or by Group Policy)",
        ),
        FixId.METHOD2_DISABLE_ROOT_UPDATE: (
            "Method 2: turn off Automatic Root Certificates Update on the clients",
            "rdptrust policy root-autoupdate --disable --out gpo",
        ),
        FixId.CA_ISSUED_HOST_CERTIFICATE: (
            "The lasting fix: give the host a certificate from a CA the clients trust",
            "rdptrust ca issue HOST --out host-cert",
        ),
        FixId.SEND_FULL_CHAIN: (
            "Make the host send its intermediate certificates (or make the AIA URL reachable)",
            "certutil -addstore -f CA intermediate.cer (on the host)",
        ),
        FixId.REACH_REVOCATION_URLS: (
            "Let the clients reach the revocation URLs, or shorten the waits",
            "rdptrust policy retrieval-timeouts --url-timeout-ms 3000"
            " --revocation-timeout-ms 5000 --out timeouts",
        ),
        FixId.DISALLOWED_AUTOUPDATE_OFF: (
            "Turn off the disallowed-list and pin-rules update on the clients",
            "rdptrust policy disallowed-autoupdate --disable --out gpo",
        ),
        FixId.ROOT_DIR_URL_MIRROR: (
            "Serve the certificate trust lists from an internal mirror (RootDirUrl)",
            "rdptrust policy root-dir-url http://YOUR-MIRROR/ctl/ --out gpo-mirror",
        ),
        FixId.PROXY_AUTODETECT: (
            "Give the clients a proxy they find at once, or none to look for",
            "netsh winhttp set proxy proxy.example:3128 (or publish a working wpad.dat)",
        ),
    }
)


@dataclass(frozen=True)
class WaitFix:
    """One fix for a recorded wait: the catalog id, its title, and a command."""

    id: FixId
    title: str
    command: str


def fixes_for_purpose(purpose: Purpose | None) -> tuple[WaitFix, ...]:
    """The fixes of a recorded wait of *purpose* (none for an unknown purpose)."""
    if purpose is None:
        return ()
    return tuple(WaitFix(f, *STALL_FIX_TEXT[f]) for f in STALL_FIXES[purpose])
