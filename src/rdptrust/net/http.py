"""Timed HTTP retrievals for PKI data (root list, AIA, CRL, OCSP), as Windows makes them.

One request, one typed result: the outcome, the status, how long it took and the body.
Network failures never raise; they are outcomes. No proxy settings are taken from the
environment (a static proxy is a parameter) and redirects are bounded.

The request carries what CryptoAPI sends (a CAPI2 log shows ``Accept: */*``, the
``User-Agent`` and ``Connection``) and no ``Accept-Encoding``. The body is read raw, never
decoded: the byte cap counts bytes as they arrive on the wire, and an answer with a
``Content-Encoding`` is unusable data, as it is to Windows, however small it is.
:class:`BodyBudget` bounds the body bytes that all retrievals of one diagnosis hold at once.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import certifi
import h11
import httpx

from rdptrust.errors import local_limit_text, local_resource_error
from rdptrust.model.retrieval import FetchOutcome, HttpResult
from rdptrust.net.connector import TCP_GIVE_UP_S, OrderedBackend, recording
from rdptrust.net.resolve import AsyncLookup, resolve

#: MaxUrlRetrievalByteCount, the SDK default for one URL (WINDOWS.md §3): 100 MiB.
MAX_BODY = 100 * 1024 * 1024
MAX_REDIRECTS = 3
#: What Windows' CryptoAPI sends as User-Agent (CAPI2 logs show Microsoft-CryptoAPI/<os>).
USER_AGENT = "Microsoft-CryptoAPI/10.0"
#: What every CryptoAPI User-Agent begins with; the version is the client's (6.1, 10.0).
USER_AGENT_PREFIX = "Microsoft-CryptoAPI/"
#: The headers of every request, as a CAPI2 log shows CryptoAPI's (no Accept-Encoding).
REQUEST_HEADERS = {"Accept": "*/*", "User-Agent": USER_AGENT, "Connection": "Keep-Alive"}
#: Body bytes that the retrievals sharing one budget may hold at once (rdptrust's own bound).
DEFAULT_BUDGET_BYTES = 32 * 1024 * 1024


class BodyBudget:
    """Body bytes held at once by the retrievals that share it.

    A retrieval takes bytes as chunks arrive and gives them back when it ends. Past the
    limit, one retrieval at a time may overdraw (so the budget can never deadlock); the
    others stop reading, and TCP holds the server back, until bytes come back. The time a
    retrieval spends held back is not the server's: it is taken out of its elapsed time
    and added to its time-out. At most ``limit`` plus one body (the overdraft) is held.
    """

    def __init__(self, limit: int = DEFAULT_BUDGET_BYTES) -> None:
        if limit <= 0:
            raise ValueError("the budget must be positive")
        self.limit = limit
        self.used = 0
        #: The most bytes held at once, for reports and tests.
        self.peak = 0
        self._overdraft: object | None = None
        self._changed = asyncio.Condition()

    def _grant(self, owner: object, size: int) -> bool:
        if self.used + size <= self.limit or self._overdraft is owner:
            pass
        elif self._overdraft is None:
            self._overdraft = owner
        else:
            return False
        self.used += size
        self.peak = max(self.peak, self.used)
        return True

    async def take(self, owner: object, size: int) -> float:
        """Take *size* bytes for *owner*; the seconds it was held back."""
        if self._grant(owner, size):
            return 0.0
        start = time.monotonic()
        async with self._changed:
            await self._changed.wait_for(lambda: self._grant(owner, size))
        return time.monotonic() - start

    async def give_back(self, owner: object, size: int) -> None:
        """Give back what *owner* took (all of it: it is done)."""
        self.used -= size
        if self._overdraft is owner:
            self._overdraft = None
        async with self._changed:
            self._changed.notify_all()


# -- destination policy hook --------------------------------------------------------------
#: Asked before each connection (the first request and every redirect): *url*, the
#: resolved address and port; returns why it is refused, or None to connect there.
Admit = Callable[[str, str, int], "str | None"]


class DestinationRefused(Exception):
    """A request the destination policy refused; the retrieval is reported as skipped."""


def destination_guard(admit: Admit) -> Callable[[httpx.Request], Awaitable[None]]:
    """An httpx request hook: resolve the host once, ask *admit*, pin the address.

    The request is sent to the address that was checked (the Host header and TLS server
    name keep the name), so the name is never resolved again between check and connect.
    httpx calls request hooks for every redirect too, so each hop is checked.
    """

    async def guard(request: httpx.Request) -> None:
        url = str(request.url)
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except socket.gaierror:
            return  # unresolvable: the connection fails as DNS_ERROR on its own
        reasons: list[str] = []
        for info in infos:
            address = str(info[4][0])
            reason = admit(url, address, port)
            if reason is None:
                if address != host:
                    if request.url.scheme == "https":
                        request.extensions = {**request.extensions, "sni_hostname": host}
                    request.url = request.url.copy_with(host=address)
                return
            reasons.append(reason)
        raise DestinationRefused(f"not fetched: {reasons[0] if reasons else host}")

    return guard


# -- end of the destination policy hook -----------------------------------------------------


def _classify(exc: BaseException) -> tuple[FetchOutcome, str]:
    seen: set[int] = set()
    cause: BaseException | None = exc
    local = local_resource_error(exc)
    if local is not None:
        return FetchOutcome.LOCAL_ERROR, f"not tried: this machine {local_limit_text(local)}"
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, socket.gaierror):
            return FetchOutcome.DNS_ERROR, f"name not resolved ({cause.strerror or cause})"
        if isinstance(cause, ConnectionRefusedError):
            return FetchOutcome.REFUSED, "connection refused"
        if isinstance(cause, ConnectionResetError | BrokenPipeError):
            # A reset fails as fast as a refusal; the words keep the two apart.
            return FetchOutcome.REFUSED, "connection reset by the server"
        if isinstance(cause, TimeoutError | httpx.TimeoutException):
            return FetchOutcome.TIMEOUT, "no answer in time"
        if isinstance(cause, h11.RemoteProtocolError):
            # The server answered, but not in HTTP (a bad status line, a header over the
            # limit): an answer that cannot be used, as fast as the server sent it.
            return FetchOutcome.INVALID, f"not an HTTP answer ({cause})"
        cause = cause.__cause__ or cause.__context__
    text = str(exc) or type(exc).__name__
    if "reset" in text.lower() or isinstance(exc, httpx.RemoteProtocolError):
        return FetchOutcome.REFUSED, f"connection reset by the server ({text})"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return FetchOutcome.DNS_ERROR, text
    if "refused" in text.lower():
        return FetchOutcome.REFUSED, text
    # Reset, unreachable network and the like fail fast, as a refusal does.
    return FetchOutcome.REFUSED, f"connection failed ({text})"


#: Picks the proxy of one request URL (None: direct), as a PAC file does.
ProxyRoute = Callable[[str], "str | None"]


@functools.cache
def verify_context(cafile: str) -> ssl.SSLContext:
    """The TLS context HTTPS retrievals verify servers with: the CA bundle at *cafile*
    trusted, as httpx's default context trusts certifi's (httpx's own dependency).

    Made once per process and bundle, then shared by every retrieval client: reading the
    bundle's ~140 certificates into a context costs 15-40 ms of CPU, twice per diagnosis
    (the trust-list syncs and the chain's retrievals each have a client). Nothing changes
    it after it is made (httpcore sets the same HTTP/1.1 ALPN on each connect).
    """
    return ssl.create_default_context(cafile=cafile)


def ordered_transport(
    *,
    proxy: str | None,
    max_connections: int,
    lookup: AsyncLookup = resolve,
    give_up_s: float = TCP_GIVE_UP_S,
) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose TCP connects go address after address, as WinHTTP's do
    (:mod:`rdptrust.net.connector`), through *proxy* when given."""
    transport = httpx.AsyncHTTPTransport(
        verify=verify_context(certifi.where()),
        trust_env=False,
        limits=httpx.Limits(max_connections=max_connections),
        proxy=proxy,
    )
    # httpcore's pools (direct and proxied alike) keep their backend here
    transport._pool._network_backend = OrderedBackend(lookup, give_up_s)
    return transport


class RoutedTransport(httpx.AsyncBaseTransport):
    """Each request through the proxy *route* picks for its URL (one transport per proxy)."""

    def __init__(
        self, route: ProxyRoute, *, max_connections: int, lookup: AsyncLookup, give_up_s: float
    ) -> None:
        self._route = route
        self._max = max_connections
        self._lookup = lookup
        self._give_up_s = give_up_s
        self._transports: dict[str | None, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        proxy = self._route(str(request.url))
        transport = self._transports.get(proxy)
        if transport is None:
            transport = ordered_transport(
                proxy=proxy,
                max_connections=self._max,
                lookup=self._lookup,
                give_up_s=self._give_up_s,
            )
            self._transports[proxy] = transport
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self._transports.values():
            await transport.aclose()


def retrieval_client(
    timeout: float,
    *,
    proxy: str | None = None,
    max_connections: int = 64,
    admit: Admit | None = None,
    route: ProxyRoute | None = None,
    lookup: AsyncLookup = resolve,
    give_up_s: float = TCP_GIVE_UP_S,
    user_agent: str = USER_AGENT,
) -> httpx.AsyncClient:
    """The client retrievals share: CryptoAPI's headers, no environment, bounded redirects;
    through *proxy* (a static HTTP proxy, as ``netsh winhttp set proxy``) when given, or
    through the proxy *route* picks per URL (a PAC file's answer); every request and
    redirect first asked of *admit* (the destination policy hook). Connects go to each
    address *lookup* gives in turn, without Happy Eyeballs (:mod:`rdptrust.net.connector`)."""
    transport: httpx.AsyncBaseTransport
    if route is not None:
        transport = RoutedTransport(
            route, max_connections=max_connections, lookup=lookup, give_up_s=give_up_s
        )
    else:
        transport = ordered_transport(
            proxy=proxy, max_connections=max_connections, lookup=lookup, give_up_s=give_up_s
        )
    client = httpx.AsyncClient(
        # destination policy hook: checked before each request and each redirect
        event_hooks={"request": [_no_credentials, *([destination_guard(admit)] if admit else [])]},
        trust_env=False,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        timeout=httpx.Timeout(timeout),
        headers={**REQUEST_HEADERS, "User-Agent": user_agent},
        transport=transport,
    )
    client.headers.pop("Accept-Encoding", None)
    return client


# -- credentials: never sent ----------------------------------------------------------------


def without_userinfo(url: str) -> str:
    """*url* without ``user:password@``: a certificate's URL carries no credentials we send
    (httpx would turn them into an ``Authorization: Basic`` header)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


async def _no_credentials(request: httpx.Request) -> None:
    """Drop what httpx derives from userinfo, on the first request and every redirect."""
    request.headers.pop("Authorization", None)
    if request.url.userinfo:
        request.url = request.url.copy_with(username=None, password=None)


# -- end of credentials ----------------------------------------------------------------------


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _encoded(response: httpx.Response) -> str | None:
    """The Content-Encoding of *response*, None when the body is sent as it is."""
    coding = ",".join(response.headers.get_list("Content-Encoding")).strip()
    return coding if coding and coding.lower() != "identity" else None


async def fetch(
    url: str,
    *,
    timeout: float,
    method: str = "GET",
    content: bytes | None = None,
    content_type: str | None = None,
    client: httpx.AsyncClient | None = None,
    max_body: int = MAX_BODY,
    budget: BodyBudget | None = None,
    proxy: str | None = None,
    admit: Admit | None = None,
) -> HttpResult:
    """Fetch *url* within *timeout* seconds in all (connect, send, wait, read).

    At most *max_body* raw bytes are read; *budget* is shared by concurrent retrievals
    to bound the bytes they hold together. *proxy* applies only when fetch makes its
    own client (an injected *client* carries its own). The result lists the connects
    made for it, address by address (``attempts``).
    """
    with recording() as attempts:
        result = await _fetch(
            url,
            timeout=timeout,
            method=method,
            content=content,
            content_type=content_type,
            client=client,
            max_body=max_body,
            budget=budget,
            proxy=proxy,
            admit=admit,
        )
    return replace(result, attempts=tuple(attempts)) if attempts else result


async def _fetch(
    url: str,
    *,
    timeout: float,
    method: str,
    content: bytes | None,
    content_type: str | None,
    client: httpx.AsyncClient | None,
    max_body: int,
    budget: BodyBudget | None,
    proxy: str | None,
    admit: Admit | None,
) -> HttpResult:
    start = time.monotonic()
    held_back = 0.0

    def elapsed() -> float:
        return round((time.monotonic() - start - held_back) * 1000.0, 3)

    try:
        parts = urlsplit(url)
        # .port raises for a port out of range, which the socket layer would not map.
        parts.port  # noqa: B018
    except ValueError as exc:
        return HttpResult(url, FetchOutcome.INVALID, None, elapsed(), None, f"bad URL: {exc}")
    host = (parts.hostname or "").rstrip(".").lower()
    if host == "invalid" or host.endswith(".invalid"):
        # RFC 6761 6.4: resolvers answer "invalid." negatively without asking anyone.
        return HttpResult(
            url, FetchOutcome.DNS_ERROR, None, elapsed(), None, f"{host} never resolves (RFC 6761)"
        )

    own = client is None
    try:
        http = client or retrieval_client(timeout, proxy=proxy, admit=admit)
    except ValueError as exc:
        return HttpResult(url, FetchOutcome.INVALID, None, elapsed(), None, f"bad proxy: {exc}")
    owner = object()
    taken = 0
    try:
        async with asyncio.timeout(timeout) as deadline:
            request = http.build_request(method, without_userinfo(url), content=content)
            # An injected client may carry httpx's defaults: the request is CryptoAPI's.
            request.headers.pop("Accept-Encoding", None)
            agent = http.headers.get("User-Agent", "")
            request.headers.update(REQUEST_HEADERS)
            if agent.startswith(USER_AGENT_PREFIX):  # the modelled client's version
                request.headers["User-Agent"] = agent
            if content_type:
                request.headers["Content-Type"] = content_type
            response = await http.send(request, stream=True)
            try:

                def failed(outcome: FetchOutcome, why: str) -> HttpResult:
                    return HttpResult(url, outcome, response.status_code, elapsed(), None, why)

                # A 3xx left here could not be followed (no Location, 304): no answer either.
                if not 200 <= response.status_code < 300:
                    reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
                    return failed(FetchOutcome.HTTP_ERROR, reason)
                coding = _encoded(response)
                if coding is not None:
                    return failed(
                        FetchOutcome.INVALID,
                        f"answer sent with Content-Encoding {coding}, which CryptoAPI neither "
                        "asks for nor decodes",
                    )
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > max_body:
                    return failed(
                        FetchOutcome.INVALID,
                        f"answer larger than {max_body} bytes (Content-Length {int(declared)})",
                    )
                chunks: list[bytes] = []
                size = 0
                # (An answer made in memory, as a mock transport's, is already read.)
                stream = (
                    _one(response.content) if response.is_stream_consumed else response.aiter_raw()
                )
                async for chunk in stream:
                    size += len(chunk)
                    if size > max_body:
                        return failed(FetchOutcome.INVALID, f"answer larger than {max_body} bytes")
                    if budget is not None:
                        waited = await budget.take(owner, len(chunk))
                        taken += len(chunk)
                        if waited:
                            held_back += waited
                            when = deadline.when()
                            if when is not None:
                                deadline.reschedule(when + waited)
                    chunks.append(chunk)
                body = b"".join(chunks)
                chunks.clear()
                return HttpResult(url, FetchOutcome.OK, response.status_code, elapsed(), body, None)
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        return HttpResult(url, FetchOutcome.TIMEOUT, None, elapsed(), None, "no answer in time")
    except DestinationRefused as exc:  # destination policy hook
        return HttpResult(url, FetchOutcome.SKIPPED, None, elapsed(), None, str(exc))
    except httpx.TooManyRedirects:
        return HttpResult(url, FetchOutcome.HTTP_ERROR, None, elapsed(), None, "too many redirects")
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        return HttpResult(url, FetchOutcome.INVALID, None, elapsed(), None, f"bad URL: {exc}")
    except (httpx.HTTPError, OSError) as exc:
        outcome, message = _classify(exc)
        return HttpResult(url, outcome, None, elapsed(), None, message)
    finally:
        if budget is not None and taken:
            await budget.give_back(owner, taken)
        if own:
            await http.aclose()
