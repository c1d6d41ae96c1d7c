"""Read one entry's attribute from an LDAP server, timed, as a retrieval outcome.

The Windows client reads ``ldap://`` CRL distribution points and AIA URLs over LDAP
(WINDOWS.md §4). :func:`ldap_read` connects to each address of the host in order
(no Happy Eyeballs, as WinHTTP documents none), sends one anonymous baseObject search
(:mod:`rdptrust.protocol.ldap`: no bind, no credentials) and reads the answer, all
within one time-out. It never raises for what the network or the server does: every
end is an :class:`~rdptrust.model.retrieval.HttpResult` (``status`` is None; the body
is the first value of the requested attribute). A black hole (a server that accepts
and never answers) is a ``timeout``, as a silent HTTP server is.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable

from rdptrust.errors import RemoteProtocolError, local_limit_text, local_resource_error
from rdptrust.model.retrieval import ConnectAttempt, ConnectOutcome, FetchOutcome, HttpResult
from rdptrust.net.connector import connect_outcome
from rdptrust.protocol.ldap import (
    SUCCESS,
    bytes_needed,
    read_search_answer,
    search_request,
    unbind_request,
)

#: Decides whether a connection may be made: (url, address, port) -> refusal or None.
Admit = Callable[[str, str, int], "str | None"]
_MESSAGE_ID = 1
_READ_CHUNK = 65536


class _NotAdmitted(Exception):
    """Every address of the host is refused by the destination policy."""


def _result(
    url: str,
    outcome: FetchOutcome,
    started: float,
    body: bytes | None,
    error: str | None,
    attempts: list[ConnectAttempt],
) -> HttpResult:
    elapsed = round((time.monotonic() - started) * 1000.0, 3)
    return HttpResult(url, outcome, None, elapsed, body, error, attempts=tuple(attempts))


async def _connect(
    url: str, host: str, port: int, admit: Admit | None, attempts: list[ConnectAttempt]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to each address of *host* in order, each connect recorded in *attempts*
    (the model charges a refused one as Windows pays it); the last failure is raised."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    failure: BaseException | None = None
    refusals: list[str] = []
    for family, _, _, _, address in infos:
        reason = admit(url, str(address[0]), port) if admit is not None else None
        if reason is not None:
            refusals.append(reason)
            continue
        start = time.monotonic()

        def record(
            outcome: ConnectOutcome, addr: str = str(address[0]), start: float = start
        ) -> None:
            elapsed = round((time.monotonic() - start) * 1000.0, 3)
            attempts.append(ConnectAttempt(addr, port, outcome, elapsed))

        try:
            connected = await asyncio.open_connection(
                str(address[0]), port, family=family, limit=_READ_CHUNK
            )
        except OSError as exc:
            record(connect_outcome(exc))
            failure = exc
            continue
        except asyncio.CancelledError:
            record(ConnectOutcome.TIMEOUT)  # the URL's time-out ended a silent connect
            raise
        record(ConnectOutcome.CONNECTED)
        return connected
    if failure is None:
        raise _NotAdmitted(f"not fetched: {refusals[0] if refusals else host}")
    raise failure


async def ldap_read(
    url: str,
    host: str,
    port: int,
    dn: str,
    attributes: tuple[str, ...],
    *,
    timeout: float,
    max_bytes: int,
    equality: tuple[str, str] | None = None,
    admit: Admit | None = None,
) -> HttpResult:
    """Search *dn* on *host*:*port* for *attributes*; see the module docstring.

    *max_bytes* bounds the answer (as the body limit bounds an HTTP retrieval);
    *admit* is the destination policy (a refused address is ``skipped``).
    """
    started = time.monotonic()
    attempts: list[ConnectAttempt] = []
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await _connect(url, host, port, admit, attempts)
            writer.write(
                search_request(
                    _MESSAGE_ID,
                    dn,
                    attributes,
                    filter_equality=equality,
                    time_limit_s=max(1, int(timeout)),
                )
            )
            await writer.drain()
            buffer = bytearray()
            need = 0
            while True:
                if len(buffer) >= need:
                    # parsed again only once the next message can be whole: a large CRL
                    # arrives in many chunks, and is copied once, not once per chunk
                    data = bytes(buffer)
                    answer = read_search_answer(data, _MESSAGE_ID, attributes, limit=max_bytes)
                    if answer is not None:
                        break
                    need = bytes_needed(data, limit=max_bytes)
                if len(buffer) > max_bytes:
                    raise RemoteProtocolError(f"answer over {max_bytes} bytes", len(buffer))
                chunk = await reader.read(_READ_CHUNK)
                if not chunk:
                    return _result(
                        url,
                        FetchOutcome.REFUSED,
                        started,
                        None,
                        "connection closed by the server",
                        attempts,
                    )
                buffer += chunk
            with contextlib.suppress(OSError):
                writer.write(unbind_request(_MESSAGE_ID + 1))
    except TimeoutError:
        return _result(url, FetchOutcome.TIMEOUT, started, None, "no answer in time", attempts)
    except socket.gaierror as exc:
        return _result(
            url,
            FetchOutcome.DNS_ERROR,
            started,
            None,
            f"name not resolved ({exc.strerror})",
            attempts,
        )
    except _NotAdmitted as exc:
        return _result(url, FetchOutcome.SKIPPED, started, None, str(exc), attempts)
    except ConnectionRefusedError:
        return _result(url, FetchOutcome.REFUSED, started, None, "connection refused", attempts)
    except RemoteProtocolError as exc:
        return _result(
            url, FetchOutcome.INVALID, started, None, f"not an LDAP answer: {exc}", attempts
        )
    except OSError as exc:
        local = local_resource_error(exc)
        if local is not None:
            text = f"not tried: this machine {local_limit_text(local)}"
            return _result(url, FetchOutcome.LOCAL_ERROR, started, None, text, attempts)
        return _result(
            url, FetchOutcome.REFUSED, started, None, f"connection failed ({exc})", attempts
        )
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
    found, _ = answer
    if found.result_code != SUCCESS:
        said = f": {found.message}" if found.message else ""
        detail = f"LDAP result {found.result_code}{said}"
        return _result(url, FetchOutcome.HTTP_ERROR, started, None, detail, attempts)
    if not found.values:
        return _result(
            url, FetchOutcome.INVALID, started, None, f"no {attributes[0]} in {dn}", attempts
        )
    return _result(url, FetchOutcome.OK, started, found.values[0], None, attempts)
