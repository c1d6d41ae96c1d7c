"""Timed HTTP retrievals for PKI data (root list, AIA, CRL, OCSP), as Windows makes them.

One request, one typed result: the outcome, the status, how long it took and the body.
Network failures never raise; they are outcomes. No proxy settings are taken from the
environment and redirects are bounded, so what is measured is the direct path.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import httpx

from rdptrust.model.retrieval import FetchOutcome, HttpResult

#: Bodies larger than this are cut off and reported invalid (a CRL of a large CA is a few MiB).
MAX_BODY = 10 * 1024 * 1024
MAX_REDIRECTS = 3

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


async def fetch(
    url: str,
    *,
    timeout: float,
    method: str = "GET",
    content: bytes | None = None,
    content_type: str | None = None,
    client: httpx.AsyncClient | None = None,
    max_body: int = MAX_BODY,
    admit: Admit | None = None,
) -> HttpResult:
    """Fetch *url* within *timeout* seconds in all (connect, send, wait, read)."""
    start = time.monotonic()

    def elapsed() -> float:
        return round((time.monotonic() - start) * 1000.0, 3)

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
    http = client or httpx.AsyncClient(
        trust_env=False,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        timeout=httpx.Timeout(timeout),
        headers={"User-Agent": "Microsoft-CryptoAPI/10.0"},
        event_hooks={"request": [destination_guard(admit)]} if admit else None,
    )
    headers = {"Content-Type": content_type} if content_type else None
    try:
        async with asyncio.timeout(timeout):
            async with http.stream(method, url, content=content, headers=headers) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_body:
                        return HttpResult(
                            url,
                            FetchOutcome.INVALID,
                            response.status_code,
                            elapsed(),
                            None,
                            f"answer larger than {max_body} bytes",
                        )
                # A 3xx left here could not be followed (no Location, 304): no answer either.
                if not 200 <= response.status_code < 300:
                    return HttpResult(
                        url,
                        FetchOutcome.HTTP_ERROR,
                        response.status_code,
                        elapsed(),
                        None,
                        f"HTTP {response.status_code} {response.reason_phrase}".strip(),
                    )
                return HttpResult(
                    url, FetchOutcome.OK, response.status_code, elapsed(), bytes(body), None
                )
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
        if own:
            await http.aclose()
