"""The modelled Windows client's settings, and one reason it waits."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rdptrust.model.retrieval import Purpose

DEFAULT_ROOT_LIST_URL = (
    "http://ctldl.windowsupdate.com/msdownload/update/v3/static/trustedr/en/authrootstl.cab"
)


class RevocationRegime(enum.StrEnum):
    """Which revocation time-out regime the chain engine applies (WINDOWS.md §3; the
    caller's flags choose)."""

    ACCUMULATIVE = "accumulative"
    PER_URL = "per-url"
    BOTH = "both"


class ClientProfile(enum.StrEnum):
    """The Windows client version the model follows (WINDOWS.md §7)."""

    WIN7 = "win7"
    WIN81 = "win8.1"
    WIN10 = "win10"


@dataclass(frozen=True)
class WindowsSettings:
    """The client's chain-engine settings the model uses (all settable by flags)."""

    url_timeout_s: float = 15.0
    revocation_timeout_s: float = 20.0
    root_update: bool = True
    ocsp_first: bool = True
    revocation_timeouts: RevocationRegime = RevocationRegime.BOTH
    disallowed_update: bool = True
    ctl_due: bool = True
    client: ClientProfile = ClientProfile.WIN10
    root_dir_url: str | None = None


@dataclass(frozen=True)
class Cause:
    """One reason for waiting: which retrieval, how many seconds, and why, in words."""

    purpose: Purpose
    url: str
    seconds: float
    modelled: bool
    text: str
