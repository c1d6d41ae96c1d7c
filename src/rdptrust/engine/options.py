"""The one options type of an assessment: what to probe, what to fetch, what to model."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from rdptrust.engine.destinations import DestinationPolicy
from rdptrust.model.windows import DEFAULT_ROOT_LIST_URL, WindowsSettings
from rdptrust.net.resolve import AsyncLookup
from rdptrust.pki.limits import WINDOWS_LIMITS
from rdptrust.pki.pinning import KnownHosts
from rdptrust.pki.trust import TrustAnchors


@dataclass(frozen=True)
class AssessOptions:
    """How to assess one host.

    Probe: ``probe_timeout_s`` is the budget of each RDP connection (connect,
    negotiation and TLS together). ``enumerate`` adds one connection per security
    protocol and TLS version; ``standard_security`` one per Standard RDP Security
    encryption method; ``ntlm`` one for the host's anonymous NTLM CHALLENGE.

    Diagnosis: with ``diagnose`` the retrievals the Windows client would make are made
    for real. ``fetch_timeout_s`` is how long rdptrust waits here for each of them (our
    observation window); a URL that gives no answer within it counts as Windows' full
    per-URL time-out, which is ``windows.url_timeout_s`` (the modelled client, with
    its revocation time-out, root update switch and revocation order).
    ``root_list_url`` is where the modelled client fetches the trusted-root list; its
    folder is where every certificate trust list is fetched from (sequence files,
    disallowed list, pin rules), unless ``windows.root_dir_url`` names a mirror.
    ``proxy`` is a static HTTP proxy URL every retrieval goes through, as ``netsh winhttp
    set proxy`` makes CryptoAPI do (None: the direct path).

    Trust: ``anchors``, when given, are used as they are (a fleet loads them once);
    otherwise they are read from ``system_trust``, ``ca_files`` and ``ca_dirs``.
    ``known_hosts`` is rdptrust's pinned-host store, as a loaded store or its path
    (None: the default store). ``warn_days`` is how close an end date warns; ``now``
    the moment certificates are judged against (None: the current time).

    The client's own stores (:mod:`rdptrust.engine.client_state`): ``intermediates``
    (DER of its CA store) complete paths as a local store does, ``disallowed`` (DER of
    its Disallowed store) distrusts any chain holding one, ``proxy`` is the static HTTP
    proxy URL its retrievals go through (WinHTTP's ``netsh winhttp set proxy``) and
    ``proxy_bypass`` that proxy's bypass list (the URLs it names go direct).
    Proxy discovery (:mod:`rdptrust.engine.autoproxy`): ``pac`` a PAC script (a file or
    an http(s) URL) that picks each retrieval's proxy; ``wpad`` WPAD discovery over DNS
    for ``wpad_domain`` first, as WinHTTP's "Automatically detect settings" does;
    ``lookup`` the name resolver of the discovery (None: the system's; a test seam).
    Service: ``destinations`` says where retrievals may connect (None: anywhere, as the
    command line does; the exporter always gives one).
    """

    probe_timeout_s: float = 10.0
    enumerate: bool = True
    standard_security: bool = True
    ntlm: bool = False
    diagnose: bool = True
    fetch_timeout_s: float = 15.0
    windows: WindowsSettings = field(default_factory=WindowsSettings)
    root_list_url: str = DEFAULT_ROOT_LIST_URL
    system_trust: bool = True
    ca_files: tuple[Path, ...] = ()
    ca_dirs: tuple[Path, ...] = ()
    anchors: TrustAnchors | None = None
    known_hosts: KnownHosts | Path | None = None
    warn_days: int = 30
    now: dt.datetime | None = None
    proxy: str | None = None
    proxy_bypass: str | None = None
    disallowed: frozenset[bytes] = frozenset()
    intermediates: tuple[bytes, ...] = ()
    destinations: DestinationPolicy | None = None
    pac: str | None = None
    wpad: bool = False
    wpad_domain: str | None = None
    lookup: AsyncLookup | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.probe_timeout_s <= 0:
            raise ValueError("probe_timeout_s must be positive")
        if self.fetch_timeout_s <= 0:
            raise ValueError("fetch_timeout_s must be positive")
        if self.warn_days < 0:
            raise ValueError("warn_days must not be negative")
        if self.proxy is not None:
            parts = urlsplit(self.proxy)
            if parts.scheme.lower() != "http" or not parts.hostname:
                raise ValueError(f"proxy must be an http:// URL with a host, not {self.proxy!r}")
            if self.pac is not None or self.wpad:
                raise ValueError("a static proxy and --pac/--wpad exclude each other")
        if self.wpad and not self.wpad_domain:
            raise ValueError("WPAD discovery needs a domain (wpad_domain)")

    def deadline_s(self) -> float:
        """The most one assessment may take: probe, enumeration round, two fetch rounds."""
        budget = self.probe_timeout_s
        if self.enumerate or self.standard_security or self.ntlm:
            budget += self.probe_timeout_s
        if self.diagnose:
            # AIA is tried URL after URL (MaxAIAUrlRetrievalCountPerChain), then a round
            # of revocation for the completed path; OCSP may add a POST after a GET.
            budget += (WINDOWS_LIMITS.aia_retrievals_per_chain + 2) * self.fetch_timeout_s
        return budget
