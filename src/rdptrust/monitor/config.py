"""The exporter's configuration: named modules, as blackbox_exporter has, read from YAML.

::

    max_concurrent_probes: 16        # scrapes probing at once; more wait, then get 503
    modules:
      default:                       # used when /probe has no module parameter
        timeout: 10s                 # longest a scrape may take (number of seconds or
                                     # "500ms", "10s", "2m"); ?timeout= can only shorten it
        enumerate: true              # one connection per protocol and TLS version
        diagnose: false              # also time the URLs Windows fetches, predict the stall
        system_trust: true           # trust the system's CA store
        ca_files: [/etc/rdptrust/corp-root.pem]
        known_hosts: /var/lib/rdptrust/known_hosts.json   # default: rdptrust's own store
        warn_days: 30                # expiring-soon threshold in the verdict
        cert_changed_hold: 1h        # rdptrust_cert_changed stays 1 this long after a change
        fetch_timeout: 10s           # diagnose: how long each URL is given here (no answer
                                     # by then counts as the Windows time-out); default:
                                     # the scrape's share for one round of fetches
        windows_url_timeout: 15s     # diagnose: the Windows per-URL time-out modelled
        windows_revocation_timeout: 20s  # diagnose: the accumulative revocation budget
        windows_list_timeout: 15s    # diagnose: a blocked trust-list fetch's wait (assumed)
        root_update: true            # diagnose: Automatic Root Certificates Update is on
        root_list_url: http://mirror.example/authrootstl.cab   # diagnose: root list URL
        client_state: /etc/rdptrust/pc042.json   # judge with this Windows client's stores
                                     # and policy (rdptrust client-state); replaces
                                     # system_trust, root_update and the windows_url
                                     # and windows_revocation time-outs
        revocation_timeouts: both    # diagnose: accumulative, per-url or both (a range)
        disallowed_update: true      # diagnose: the disallowed list / pin rules sync is on
        ctl_due: true                # diagnose: the clients' cached trust lists are due
        client: win10                # diagnose: win7, win8.1 or win10 (Windows 10/11)
        crl_first: false             # diagnose: the client prefers CRLs to OCSP (50
                                     # cached OCSP answers per CA, or the GPO option)
        domain: corp.example         # diagnose: ldap:/// CRL/AIA URLs are measured against
                                     # this domain's DCs (DNS SRV); default: modelled
        dns_server: 10.0.0.53:53     # diagnose: the DNS server asked for those DCs
                                     # (the operator's URL: fetched whatever fetch_* say)
        fetch_allow: [10.20.0.0/16]  # diagnose: only these networks are fetched from
                                     # (default: any address but loopback, link-local,
                                     # multicast and this host's own addresses)
        fetch_deny: [10.20.9.0/24]   # diagnose: never fetched from (wins over fetch_allow)

A retrieval to a refused address is not made and shows as ``outcome="skipped"``; the
exporter's own listening addresses are always refused (see
:mod:`rdptrust.engine.destinations`).

Every key is optional except ``modules``. Unknown keys and wrong types are refused
with one :class:`~rdptrust.errors.UsageError` naming the key.
"""

from __future__ import annotations

import enum
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from rdptrust.engine.client_state import (
    client_anchors,
    load_client_state,
    options_with_client_state,
)
from rdptrust.engine.destinations import DestinationPolicy, IPNetwork, parse_networks
from rdptrust.engine.options import AssessOptions
from rdptrust.errors import DataError, PkiError, UsageError
from rdptrust.model.client_state import ClientState
from rdptrust.model.windows import (
    DEFAULT_ROOT_LIST_URL,
    ClientProfile,
    RevocationRegime,
    WindowsSettings,
)
from rdptrust.net.srv import parse_nameserver
from rdptrust.pki.schemes import domain_name
from rdptrust.pki.trust import TrustAnchors, load_trust_anchors

#: Largest configuration file read.
MAX_CONFIG_BYTES = 1 << 20
#: Longest scrape a module may allow, in seconds.
MAX_TIMEOUT_S = 600.0
DEFAULT_MODULE = "default"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_MODULE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Module:
    """One named way to probe: time-outs, enumeration, trust sources, diagnosis.

    ``known_hosts`` None reads rdptrust's default pinned-host store (of the user the
    exporter runs as); ``root_list_url`` None keeps the Windows Update URL.
    ``client_state`` names a client-state file; ``loaded_client_state`` is what it holds,
    read once at start by :func:`with_anchors`.
    ``fetch_allow`` empty allows any address outside the default-denied ones.
    """

    name: str
    timeout_s: float = 10.0
    enumerate: bool = True
    diagnose: bool = False
    system_trust: bool = True
    ca_files: tuple[Path, ...] = ()
    known_hosts: Path | None = None
    warn_days: int = 30
    cert_changed_hold_s: float = 3600.0
    fetch_timeout_s: float | None = None
    windows_url_timeout_s: float = 15.0
    windows_revocation_timeout_s: float = 20.0
    windows_list_timeout_s: float = 15.0
    root_update: bool = True
    root_list_url: str | None = None
    client_state: Path | None = None
    loaded_client_state: ClientState | None = field(default=None, compare=False, repr=False)
    revocation_timeouts: RevocationRegime = RevocationRegime.BOTH
    disallowed_update: bool = True
    ctl_due: bool = True
    client: ClientProfile = ClientProfile.WIN10
    crl_first: bool = False
    domain: str | None = None
    dns_server: str | None = None
    fetch_allow: tuple[IPNetwork, ...] = ()
    fetch_deny: tuple[IPNetwork, ...] = ()

    def destinations(self, policy: DestinationPolicy) -> DestinationPolicy:
        """*policy* (the exporter's own addresses) with this module's networks and URLs."""
        trusted = frozenset(u for u in (self.root_list_url,) if u is not None)
        return DestinationPolicy(
            allow=self.fetch_allow,
            deny=self.fetch_deny,
            own_addresses=policy.own_addresses,
            own_endpoints=policy.own_endpoints,
            trusted_urls=policy.trusted_urls | trusted,
        )

    def options(
        self,
        anchors: TrustAnchors | None,
        budget_s: float,
        destinations: DestinationPolicy | None = None,
    ) -> AssessOptions:
        """Assessment options for a scrape that may take *budget_s* seconds in all.

        The probe, the enumeration round and the diagnosis' two rounds of URL fetches
        (the second after AIA) run one after another, so each gets its share. A fetch
        cut short by the share still counts as a full Windows time-out in the model.
        """
        shares = 1.0 + (1.0 if self.enumerate else 0.0) + (2.0 if self.diagnose else 0.0)
        per_step = max(0.1, budget_s / shares)
        fetch = min(per_step, self.fetch_timeout_s or per_step, self.windows_url_timeout_s)
        options = AssessOptions(
            probe_timeout_s=per_step,
            enumerate=self.enumerate,
            standard_security=False,
            ntlm=False,
            diagnose=self.diagnose,
            fetch_timeout_s=fetch,
            windows=WindowsSettings(
                url_timeout_s=self.windows_url_timeout_s,
                revocation_timeout_s=self.windows_revocation_timeout_s,
                list_timeout_s=self.windows_list_timeout_s,
                root_update=self.root_update,
                revocation_timeouts=self.revocation_timeouts,
                disallowed_update=self.disallowed_update,
                ctl_due=self.ctl_due,
                client=self.client,
                ocsp_first=not self.crl_first,
                domain=self.domain,
                dns_server=self.dns_server,
            ),
            root_list_url=self.root_list_url or DEFAULT_ROOT_LIST_URL,
            system_trust=self.system_trust,
            ca_files=self.ca_files,
            anchors=anchors,
            known_hosts=self.known_hosts,
            warn_days=self.warn_days,
            destinations=destinations or self.destinations(DestinationPolicy()),
        )
        if self.loaded_client_state is None:
            return options
        return options_with_client_state(options, self.loaded_client_state, anchors=anchors)


@dataclass(frozen=True)
class ExporterConfig:
    """The exporter's modules by name, and how many probes may run at once."""

    modules: Mapping[str, Module]
    max_concurrent_probes: int = 16
    source: Path | None = None
    anchors: Mapping[str, TrustAnchors] = field(default_factory=dict)

    def module(self, name: str | None) -> Module:
        """The module called *name* (the default one for None); UsageError if unknown."""
        key = name or DEFAULT_MODULE
        try:
            return self.modules[key]
        except KeyError:
            known = ", ".join(sorted(self.modules))
            raise UsageError(f"unknown module {key!r}; configured modules: {known}") from None


def default_config() -> ExporterConfig:
    """Two modules without a file: ``default`` (probe) and ``diagnose`` (probe and diagnose)."""
    modules = {
        DEFAULT_MODULE: Module(DEFAULT_MODULE),
        "diagnose": Module("diagnose", timeout_s=30.0, diagnose=True),
    }
    return with_anchors(ExporterConfig(modules))


def with_anchors(config: ExporterConfig) -> ExporterConfig:
    """Load each module's trust anchors once (they are read at start, not per scrape)."""
    anchors: dict[str, TrustAnchors] = {}
    modules: dict[str, Module] = {}
    for name, module in config.modules.items():
        try:
            if module.client_state is not None:
                state = load_client_state(module.client_state)
                module = replace(module, loaded_client_state=state)
                anchors[name] = client_anchors(state, module.ca_files)
            else:
                anchors[name] = load_trust_anchors(
                    system=module.system_trust, ca_files=list(module.ca_files)
                )
        except (PkiError, DataError) as exc:
            raise UsageError(f"module {name!r}: {exc}") from exc
        except OSError as exc:
            raise UsageError(
                f"module {name!r}: cannot read {module.client_state}: {exc.strerror or exc}"
            ) from exc
        modules[name] = module
    return ExporterConfig(modules, config.max_concurrent_probes, config.source, anchors)


def load_config(path: Path) -> ExporterConfig:
    """Read and validate the YAML file at *path*; UsageError names the first bad key."""
    where = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the config file {where}: {exc.strerror or exc}") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise UsageError(f"the config file {where} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UsageError(f"the config file {where} is not valid YAML{at}: {problem}") from exc
    config = parse_config(document, where)
    return with_anchors(
        ExporterConfig(config.modules, config.max_concurrent_probes, path, config.anchors)
    )


def parse_config(document: Any, where: str = "config") -> ExporterConfig:
    """Validate a loaded YAML document (see the module docstring for its shape)."""
    if not isinstance(document, dict):
        raise UsageError(f"{where}: expected a mapping with 'modules' at the top")
    _known_keys(document, {"modules", "max_concurrent_probes"}, where)
    if "modules" not in document:
        raise UsageError(f"{where}: 'modules' is missing")
    raw_modules = document["modules"]
    if not isinstance(raw_modules, dict) or not raw_modules:
        raise UsageError(f"{where}: 'modules' must map module names to settings")
    concurrency = _integer(
        document.get("max_concurrent_probes", 16), f"{where}: max_concurrent_probes", 1, 1024
    )
    modules: dict[str, Module] = {}
    for name, settings in raw_modules.items():
        if not isinstance(name, str) or not _MODULE_NAME.match(name):
            raise UsageError(
                f"{where}: module name {name!r} must be 1-64 letters, digits, '_', '.' or '-'"
            )
        modules[name] = _module(name, settings, f"{where}: modules.{name}")
    return ExporterConfig(modules, concurrency)


_MODULE_KEYS: dict[str, str] = {
    "timeout": "timeout_s",
    "enumerate": "enumerate",
    "diagnose": "diagnose",
    "system_trust": "system_trust",
    "ca_files": "ca_files",
    "known_hosts": "known_hosts",
    "warn_days": "warn_days",
    "cert_changed_hold": "cert_changed_hold_s",
    "fetch_timeout": "fetch_timeout_s",
    "windows_url_timeout": "windows_url_timeout_s",
    "windows_revocation_timeout": "windows_revocation_timeout_s",
    "windows_list_timeout": "windows_list_timeout_s",
    "root_update": "root_update",
    "root_list_url": "root_list_url",
    "client_state": "client_state",
    "revocation_timeouts": "revocation_timeouts",
    "disallowed_update": "disallowed_update",
    "ctl_due": "ctl_due",
    "client": "client",
    "crl_first": "crl_first",
    "domain": "domain",
    "dns_server": "dns_server",
    "fetch_allow": "fetch_allow",
    "fetch_deny": "fetch_deny",
}


def _module(name: str, settings: Any, where: str) -> Module:
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise UsageError(f"{where}: expected a mapping of settings")
    _known_keys(settings, set(_MODULE_KEYS), where)
    values: dict[str, Any] = {}
    readers: dict[str, Callable[[Any, str], Any]] = {
        "timeout": lambda v, w: _duration(v, w, 0.1, MAX_TIMEOUT_S),
        "enumerate": _boolean,
        "diagnose": _boolean,
        "system_trust": _boolean,
        "ca_files": _paths,
        "known_hosts": lambda v, w: Path(_string(v, w)),
        "warn_days": lambda v, w: _integer(v, w, 0, 3650),
        "cert_changed_hold": lambda v, w: _duration(v, w, 0.0, 366 * 86400.0),
        "fetch_timeout": lambda v, w: _duration(v, w, 0.1, MAX_TIMEOUT_S),
        "windows_url_timeout": lambda v, w: _duration(v, w, 0.1, MAX_TIMEOUT_S),
        "windows_revocation_timeout": lambda v, w: _duration(v, w, 0.1, MAX_TIMEOUT_S),
        "windows_list_timeout": lambda v, w: _duration(v, w, 0.1, MAX_TIMEOUT_S),
        "root_update": _boolean,
        "root_list_url": _url,
        "client_state": lambda v, w: Path(_string(v, w)),
        "revocation_timeouts": lambda v, w: RevocationRegime(_choice(v, w, RevocationRegime)),
        "disallowed_update": _boolean,
        "ctl_due": _boolean,
        "client": lambda v, w: ClientProfile(_choice(v, w, ClientProfile)),
        "crl_first": _boolean,
        "domain": _domain,
        "dns_server": _dns_server,
        "fetch_allow": _networks,
        "fetch_deny": _networks,
    }
    for key, value in settings.items():
        values[_MODULE_KEYS[key]] = readers[key](value, f"{where}.{key}")
    return Module(name=name, **values)


def _domain(value: Any, where: str) -> str:
    try:
        return domain_name(_string(value, where))
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None


def _dns_server(value: Any, where: str) -> str:
    text = _string(value, where)
    try:
        parse_nameserver(text)
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    return text


def _known_keys(mapping: dict[Any, Any], known: set[str], where: str) -> None:
    for key in mapping:
        if key not in known:
            raise UsageError(
                f"{where}: unknown key {key!r} (known keys: {', '.join(sorted(known))})"
            )


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{where}: expected true or false, got {value!r}")
    return value


def _choice(value: Any, where: str, kind: type[enum.StrEnum]) -> str:
    names = [m.value for m in kind]
    if not isinstance(value, str) or value not in names:
        raise UsageError(f"{where}: expected one of {', '.join(names)}, got {value!r}")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _integer(value: Any, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise UsageError(f"{where}: expected a whole number from {low} to {high}, got {value!r}")
    return value


def _duration(value: Any, where: str, low: float, high: float) -> float:
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds is None or not low <= seconds <= high:
        raise UsageError(
            f"{where}: expected a duration from {low:g} s to {high:g} s "
            f"(seconds, or a number with ms, s, m or h), got {value!r}"
        )
    return seconds


def _paths(value: Any, where: str) -> tuple[Path, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise UsageError(f"{where}: expected a list of file names, got {value!r}")
    return tuple(Path(_string(item, f"{where}[{i}]")) for i, item in enumerate(value))


def _networks(value: Any, where: str) -> tuple[IPNetwork, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: expected a list of networks (CIDR), got {value!r}")
    try:
        return parse_networks(value)
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None


def _url(value: Any, where: str) -> str:
    text = _string(value, where)
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{where}: expected an http:// or https:// URL, got {value!r}")
    return text
