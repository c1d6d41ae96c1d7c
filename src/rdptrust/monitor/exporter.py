"""The Prometheus exporter: ``GET /probe?target=HOST:PORT[&module=NAME]`` probes on each scrape.

The blackbox_exporter pattern: Prometheus passes the RDP host as a URL parameter, the
exporter probes it while the scrape waits and answers with that one observation's
metrics (:mod:`rdptrust.monitor.metrics`). ``/metrics`` holds the exporter's own
metrics (scrapes, durations, errors, process). The HTTP/1.1 server is
:class:`rdptrust.net.httpserver.HttpServer`; connections are kept alive between scrapes
and closed after ``idle_timeout_s`` without one.

Limits: a request's head must fit in :data:`MAX_REQUEST_BYTES` and arrive within
``request_timeout_s``; requests with a body are refused (413, or 405 for a method other
than GET and HEAD); at most ``max_connections`` connections at once (more are closed at
once); at most the configuration's
``max_concurrent_probes`` probes at once (a scrape that cannot start within its
budget gets 503).

As a service (see the README's "Exporter hardening"): a request whose ``Origin`` is not
the exporter's own, or that says ``Sec-Fetch-Site: cross-site`` or ``same-site`` (what a
web page's ``<img>`` or ``fetch`` sends), is refused with 403, so a browser cannot be
used to make the exporter probe; with a web configuration file (``web.yml``) it serves
TLS and asks for basic authentication (401); the diagnosis' retrievals go only where
the module's :class:`~rdptrust.engine.destinations.DestinationPolicy` allows, never to
the exporter's own listening addresses. A scrape's budget is its module's ``timeout``, shortened by
``?timeout=`` or Prometheus' ``X-Prometheus-Scrape-Timeout-Seconds`` header (less
:data:`SCRAPE_TIMEOUT_OFFSET_S`, so the answer arrives before Prometheus gives up).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import socket
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from rdptrust import __version__
from rdptrust.engine import AssessOptions, assess, assess_probe
from rdptrust.engine.destinations import DestinationPolicy, IPAddress, parse_address
from rdptrust.errors import UsageError
from rdptrust.model.assessment import Assessment
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import ProbeResult, Timings
from rdptrust.model.target import Target, parse_target
from rdptrust.monitor.config import ExporterConfig
from rdptrust.monitor.metrics import CertificateMemory, observation_registry
from rdptrust.monitor.webconfig import BasicAuth, WebConfig
from rdptrust.net.httpserver import HttpLimits, HttpRequest, HttpResponse, HttpServer
from rdptrust.net.service import AsyncService

#: Largest request head (request line and headers) accepted, in bytes.
MAX_REQUEST_BYTES = 8 * 1024
#: Largest body read before it is refused: the exporter answers none (413 or 405).
MAX_BODY_BYTES = 1024
#: Seconds taken off Prometheus' scrape time-out so the answer is there in time.
SCRAPE_TIMEOUT_OFFSET_S = 0.5
#: The text exposition format every Prometheus version reads.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_PORT = 9389

_log = logging.getLogger("rdptrust.exporter")
_PATHS = ("/probe", "/metrics", "/", "/-/healthy")

ObserveFunction = Callable[[Target, AssessOptions], Awaitable[Assessment]]

_LANDING = """rdptrust exporter {version}

Probe an RDP host:  /probe?target=HOST:PORT[&module=NAME][&timeout=SECONDS]
Own metrics:        /metrics
Modules:            {modules}
"""


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class _Metrics:
    """The exporter's own metrics, in a registry of its own (not the global default)."""

    def __init__(self, memory: CertificateMemory) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.scrapes = Counter(
            "rdptrust_exporter_scrapes",
            "Probe scrapes answered, by module and result (success, failure, error).",
            ("module", "result"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "rdptrust_exporter_scrape_duration_seconds",
            "Seconds each probe scrape took.",
            ("module",),
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60),
            registry=self.registry,
        )
        self.rejected = Counter(
            "rdptrust_exporter_rejected_requests",
            "Requests refused, by reason (bad_request, not_found, method, too_large, "
            "overloaded, timeout, connections, cross_site, unauthorized).",
            ("reason",),
            registry=self.registry,
        )
        self.errors = Counter(
            "rdptrust_exporter_errors",
            "Scrapes that failed inside the exporter (a bug: see the log).",
            registry=self.registry,
        )
        self.requests = Counter(
            "rdptrust_exporter_http_requests",
            "HTTP requests answered, by path and status code.",
            ("path", "code"),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "rdptrust_exporter_probes_in_flight",
            "Probes running now.",
            registry=self.registry,
        )
        remembered = Gauge(
            "rdptrust_exporter_remembered_targets",
            "Targets whose last certificate the exporter remembers.",
            registry=self.registry,
        )
        remembered.set_function(lambda: float(len(memory)))
        Gauge(
            "rdptrust_exporter_build_info",
            "1; the rdptrust version.",
            ("version",),
            registry=self.registry,
        ).labels(__version__).set(1)


class Exporter(AsyncService):
    """The exporter's HTTP server; an async context manager (or :meth:`start`/:meth:`stop`).

    *port* 0 takes a free port (see :attr:`port` once started). *observe_fn* is the
    seam that makes an observation; the default probes the network.
    """

    def __init__(
        self,
        config: ExporterConfig,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        max_connections: int = 256,
        request_timeout_s: float = 10.0,
        idle_timeout_s: float = 75.0,
        observe_fn: ObserveFunction = assess,
        web: WebConfig | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise UsageError(f"port must be 0 to 65535, not {port}")
        self.config = config
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self.request_timeout_s = request_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.memory = CertificateMemory()
        self.metrics = _Metrics(self.memory)
        self._observe = observe_fn
        self._slots = asyncio.Semaphore(config.max_concurrent_probes)
        self._http: HttpServer | None = None
        self.web = web or WebConfig()
        self._auth = BasicAuth(self.web.users)
        self.own = DestinationPolicy()
        """The exporter's own addresses and listening endpoints (known once started)."""

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.web.tls is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    async def start(self) -> None:
        if self._http is not None:
            return
        limits = HttpLimits(
            max_head_bytes=MAX_REQUEST_BYTES,
            max_body_bytes=MAX_BODY_BYTES,
            header_timeout_s=self.request_timeout_s,
            body_timeout_s=self.request_timeout_s,
            idle_timeout_s=self.idle_timeout_s,
            max_connections=self.max_connections,
        )
        http = HttpServer(
            self._answer,
            host=self.host,
            port=self.port,
            limits=limits,
            server_name=f"rdptrust/{__version__}",
            on_rejected=lambda reason: self.metrics.rejected.labels(reason).inc(),
            ssl_context=self.web.tls.context() if self.web.tls is not None else None,
        )
        await http.start()
        self._http = http
        self.port = http.port
        self.own = await own_policy(self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and end every open connection (running probes are cancelled)."""
        http, self._http = self._http, None
        if http is not None:
            await http.stop()

    async def serve_forever(self, stop: asyncio.Event) -> None:
        """Serve until *stop* is set."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # -- requests ----------------------------------------------------------------------

    async def _answer_allowed(self, request: HttpRequest) -> HttpResponse:
        try:
            status, content_type, body, path_label = await self._route(request)
        except Exception:  # one bad scrape must never stop the exporter
            _log.exception("answering %r failed inside the exporter", request.target)
            self.metrics.errors.inc()
            status, content_type = 500, "text/plain; charset=utf-8"
            body, path_label = b"internal error; see the exporter's log\n", "other"
        self.metrics.requests.labels(path_label, str(status)).inc()
        return HttpResponse(status, body, content_type)

    async def _answer(self, request: HttpRequest) -> HttpResponse:
        text = "text/plain; charset=utf-8"
        if _cross_site(request):
            self.metrics.rejected.labels("cross_site").inc()
            self.metrics.requests.labels("other", "403").inc()
            return HttpResponse(403, b"cross-site requests are refused\n", text)
        if not await self._auth.allows(request.header("authorization")):
            self.metrics.rejected.labels("unauthorized").inc()
            self.metrics.requests.labels("other", "401").inc()
            challenge = (("WWW-Authenticate", 'Basic realm="rdptrust", charset="UTF-8"'),)
            return HttpResponse(401, b"authentication required\n", text, challenge)
        return await self._answer_allowed(request)

    async def _route(self, request: HttpRequest) -> tuple[int, str, bytes, str]:
        text = "text/plain; charset=utf-8"
        parts = urllib.parse.urlsplit(request.target)
        path = parts.path
        label = path if path in _PATHS else "other"
        if request.method not in ("GET", "HEAD"):
            self.metrics.rejected.labels("method").inc()
            return 405, text, b"only GET and HEAD are answered\n", label
        if request.body:
            self.metrics.rejected.labels("too_large").inc()
            return 413, text, b"a request body is not accepted\n", label
        if path == "/probe":
            try:
                status, body = await self._probe(parts.query, request.headers)
            except _BadRequest as exc:
                reason = "overloaded" if exc.status == 503 else "bad_request"
                self.metrics.rejected.labels(reason).inc()
                return exc.status, text, f"{exc}\n".encode(), label
            return status, METRICS_CONTENT_TYPE if status == 200 else text, body, label
        if path == "/metrics":
            return 200, METRICS_CONTENT_TYPE, generate_latest(self.metrics.registry), label
        if path == "/-/healthy":
            return 200, text, b"OK\n", label
        if path == "/":
            page = _LANDING.format(
                version=__version__, modules=", ".join(sorted(self.config.modules))
            )
            return 200, text, page.encode(), label
        self.metrics.rejected.labels("not_found").inc()
        return 404, text, b"not found; try /probe?target=HOST:PORT or /metrics\n", label

    # -- probes ------------------------------------------------------------------------

    async def _probe(self, query: str, headers: Iterable[tuple[str, str]]) -> tuple[int, bytes]:
        try:
            params = urllib.parse.parse_qs(
                query, keep_blank_values=True, strict_parsing=False, max_num_fields=16
            )
        except ValueError as exc:
            raise _BadRequest(400, f"bad query string: {exc}") from None
        target_text = _single(params, "target", required=True) or ""
        try:
            target = parse_target(target_text)
        except UsageError as exc:
            raise _BadRequest(400, f"bad target: {exc}") from None
        try:
            module = self.config.module(_single(params, "module", required=False))
        except UsageError as exc:
            raise _BadRequest(400, str(exc)) from None
        budget = module.timeout_s
        requested = _single(params, "timeout", required=False)
        if requested is not None:
            budget = min(budget, _seconds(requested, "timeout"))
        for name, value in headers:
            if name == "x-prometheus-scrape-timeout-seconds":
                scrape = _seconds(value, "scrape time-out header")
                budget = min(budget, max(0.1, scrape - SCRAPE_TIMEOUT_OFFSET_S))
        start = time.monotonic()
        try:
            async with asyncio.timeout(budget):
                await self._slots.acquire()
        except TimeoutError:
            raise _BadRequest(
                503, f"too many probes running; none could start within {budget:g} s"
            ) from None
        self.metrics.in_flight.inc()
        try:
            observation = await self._observe_within(target, module.name, budget, start)
        except Exception:
            _log.exception("probe of %s with module %s failed inside the exporter", target, module)
            self.metrics.errors.inc()
            self.metrics.scrapes.labels(module.name, "error").inc()
            return 500, b"the probe failed inside the exporter; see its log\n"
        finally:
            self.metrics.in_flight.dec()
            self._slots.release()
        elapsed = time.monotonic() - start
        self.metrics.duration.labels(module.name).observe(elapsed)
        self.metrics.scrapes.labels(
            module.name, "success" if observation.reachable else "failure"
        ).inc()
        change = None
        leaf = observation.leaf
        if leaf is not None:
            change = self.memory.see(str(target), leaf.sha256, hold_s=module.cert_changed_hold_s)
        return 200, generate_latest(observation_registry(observation, change))

    async def _observe_within(
        self, target: Target, module_name: str, budget: float, start: float
    ) -> Assessment:
        module = self.config.modules[module_name]
        remaining = max(0.1, budget - (time.monotonic() - start))
        options = module.options(
            self.config.anchors.get(module_name), remaining, module.destinations(self.own)
        )
        try:
            async with asyncio.timeout(remaining):
                return await self._observe(target, options)
        except TimeoutError:
            failure = ProbeFailure(
                "timeout", f"the probe of {target} did not finish within {budget:g} s"
            )
            probe = ProbeResult(
                target=target,
                address=None,
                negotiation=None,
                tls=None,
                protocols=(),
                tls_versions=(),
                timings=Timings(total_ms=round(remaining * 1000.0, 3)),
                error=failure,
            )
            return await assess_probe(target, probe, options, start=start)


def _single(params: dict[str, list[str]], name: str, *, required: bool) -> str | None:
    values = params.get(name)
    if not values:
        if required:
            raise _BadRequest(400, f"the '{name}' parameter is missing (?{name}=HOST:PORT)")
        return None
    if len(values) > 1:
        raise _BadRequest(400, f"the '{name}' parameter is given {len(values)} times")
    return values[0]


def _seconds(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _BadRequest(400, f"bad {what} {text!r}: expected seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise _BadRequest(400, f"bad {what} {text!r}: expected a positive number of seconds")
    return value


def _cross_site(request: HttpRequest) -> bool:
    """True for what a browser sends from another site's page (the exporter has none)."""
    fetch_site = (request.header("sec-fetch-site") or "").strip().lower()
    if fetch_site in ("cross-site", "same-site"):
        return True
    origin = request.header("origin")
    if origin is None:
        return False
    host = (request.header("host") or "").strip().lower()
    netloc = urllib.parse.urlsplit(origin.strip()).netloc.lower()
    return not netloc or netloc != host


async def own_policy(host: str, port: int) -> DestinationPolicy:
    """The exporter's own addresses (never fetched by default) and listening endpoints.

    A wildcard listen address (``0.0.0.0``, ``::``) listens on every address of the host:
    loopback and what the host name resolves to.
    """
    loop = asyncio.get_running_loop()
    names = [host]
    listening = parse_address(host)
    wildcard = listening is not None and listening.is_unspecified
    if wildcard:
        names = ["127.0.0.1", "::1", socket.gethostname()]
    else:
        names.append(socket.gethostname())
    found: dict[str, set[IPAddress]] = {}
    for name in names:
        try:
            async with asyncio.timeout(2.0):
                infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError):
            infos = []
        parsed = {parse_address(str(info[4][0])) for info in infos}
        found[name] = {a for a in parsed if a is not None}
    addresses = frozenset(a for group in found.values() for a in group)
    listen = addresses if wildcard else frozenset(found.get(host, set()))
    if listening is not None and not wildcard:
        listen = listen | {listening}
    return DestinationPolicy(
        own_addresses=addresses | listen,
        own_endpoints=frozenset((a, port) for a in listen),
    )


def listen_address(text: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` or ``[v6]:PORT`` for ``--listen`` (``:PORT`` means 127.0.0.1).

    Port 0 takes a free port.
    """
    text = text.strip()
    if text.startswith(":"):
        text = "127.0.0.1" + text
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(f"{text!r}: give HOST:PORT, e.g. 127.0.0.1:{DEFAULT_PORT}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise UsageError(f"{text!r}: put an IPv6 address in brackets, e.g. [::1]:{DEFAULT_PORT}")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """True when *host* names a loopback address (names are resolved)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
    )
