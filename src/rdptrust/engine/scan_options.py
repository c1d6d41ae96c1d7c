"""How a scan probes each target: its options, and what observing one target means.

:class:`ScanOptions` is stored with each scan (``to_json``), so ``--resume`` continues
with the options the scan started with. :data:`Observer` is the seam the scan loop calls
per target (the probe, or the diagnosis).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rdptrust.model.probe import ENUMERATION_REQUESTS
from rdptrust.model.records import HostResult
from rdptrust.model.retrieval import LIST_SYNC_CONNECTIONS, MAX_RETRIEVAL_CONNECTIONS
from rdptrust.model.target import Target
from rdptrust.net.connection import TLS_VERSIONS
from rdptrust.pki.limits import WINDOWS_LIMITS

#: Seconds added to the per-host deadline beyond the connection time-outs.
_DEADLINE_SLACK = 2.0
#: File descriptors kept back for the inventory, the terminal and the interpreter.
_RESERVED_FILES = 64

#: Observes one target; must return a result for every target, never raise for a host.
Observer = Callable[[Target], Awaitable[HostResult]]


@dataclass(frozen=True)
class ScanOptions:
    """How a scan probes each target.

    ``timeout`` is the budget of each connection (connect, negotiation and TLS).
    ``deadline`` bounds all the work on one target; None means "derived from the
    time-outs" (:meth:`host_deadline`). ``rate`` is targets started per second, None for
    no limit. ``enumerate`` adds one connection per security protocol and TLS version;
    ``diagnose`` runs the diagnosis (with its retrievals) on each host; ``url_timeout``
    is then how long each retrieval may take (one that does not answer counts as the
    Windows time-out in the prediction), ``root_update`` whether the
    modelled client fetches the root list, ``root_list_url`` where from (None: the
    diagnosis' default, the Windows Update URL), ``revocation_timeouts``,
    ``disallowed_update``, ``ctl_due``, ``client``, ``root_dir_url``, ``crl_first``,
    ``domain``, ``dns_server`` and ``list_timeout`` (a blocked list fetch's wait) the
    modelled client's
    (:class:`~rdptrust.model.windows.WindowsSettings`), ``proxy`` the static HTTP proxy the
    retrievals go through (None: direct), ``pac``/``wpad``/``wpad_domain`` the proxy
    discovery (:mod:`rdptrust.engine.autoproxy`), ``ca_files`` extra trusted CAs,
    ``known_hosts`` the pinned-host store (None: rdptrust's default) and
    ``client_state`` a client-state file to judge with (None: this machine's trust).
    """

    concurrency: int = 200
    timeout: float = 5.0
    deadline: float | None = None
    rate: float | None = None
    enumerate: bool = False
    diagnose: bool = False
    url_timeout: float = 15.0
    root_update: bool = True
    root_list_url: str | None = None
    revocation_timeouts: str = "both"
    disallowed_update: bool = True
    ctl_due: bool = True
    client: str = "win10"
    root_dir_url: str | None = None
    crl_first: bool = False
    domain: str | None = None
    dns_server: str | None = None
    list_timeout: float = 15.0
    proxy: str | None = None
    pac: str | None = None
    wpad: bool = False
    wpad_domain: str | None = None
    ca_files: tuple[str, ...] = ()
    known_hosts: str | None = None
    client_state: str | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")

    def host_deadline(self) -> float:
        """Seconds allowed for one target: the given deadline, or one derived from the time-outs."""
        if self.deadline is not None:
            return self.deadline
        budget = self.timeout
        if self.enumerate:
            budget += self.timeout
        if self.diagnose:
            # issuer fetches (AIA, URL after URL) come before the revocation fetches of
            # the path; an OCSP GET that fails is followed by a POST
            budget += (WINDOWS_LIMITS.aia_retrievals_per_chain + 2) * self.url_timeout
        return budget + _DEADLINE_SLACK

    def sockets_per_host(self) -> int:
        """The most connections one target can have open at the same time."""
        sockets = 1
        if self.enumerate:
            # one per protocol and per TLS version, and the NTLM one, side by side
            sockets += len(ENUMERATION_REQUESTS) + len(TLS_VERSIONS) + 1
        if self.diagnose:
            sockets += MAX_RETRIEVAL_CONNECTIONS + LIST_SYNC_CONNECTIONS
        return sockets

    def to_json(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "timeout": self.timeout,
            "deadline": self.deadline,
            "rate": self.rate,
            "enumerate": self.enumerate,
            "diagnose": self.diagnose,
            "url_timeout": self.url_timeout,
            "root_update": self.root_update,
            "root_list_url": self.root_list_url,
            "revocation_timeouts": self.revocation_timeouts,
            "disallowed_update": self.disallowed_update,
            "ctl_due": self.ctl_due,
            "client": self.client,
            "root_dir_url": self.root_dir_url,
            "crl_first": self.crl_first,
            "domain": self.domain,
            "dns_server": self.dns_server,
            "list_timeout": self.list_timeout,
            "proxy": self.proxy,
            "pac": self.pac,
            "wpad": self.wpad,
            "wpad_domain": self.wpad_domain,
            "ca_files": list(self.ca_files),
            "known_hosts": self.known_hosts,
            "client_state": self.client_state,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScanOptions:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "ca_files" in known:
            known["ca_files"] = tuple(known["ca_files"])
        return cls(**known)


def fit_concurrency(options: ScanOptions) -> int:
    """How many targets can be in flight at once within the open-file limit.

    Raises the process's soft limit toward what ``options.concurrency`` needs (up to the
    hard limit) and returns the concurrency that fits: ``options.concurrency`` itself
    unless the hard limit is lower than that needs.
    """
    needed = options.concurrency * options.sockets_per_host() + _RESERVED_FILES
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return options.concurrency
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return options.concurrency
    return max(1, (soft - _RESERVED_FILES) // options.sockets_per_host())
