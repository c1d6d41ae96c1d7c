"""Sync the certificate trust lists as the Windows client does (WINDOWS.md §2).

For each list due: the sequence file first, then the cabinet (only when the sequence
file answered), each URL with a random query string as Windows appends one. A
``file:`` RootDirUrl is a local mirror: nothing goes over the network. Which lists a
chain syncs is :func:`rdptrust.pki.windows.ctl_syncs`'s; what they cost is the judge's.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType

import httpx

from rdptrust.model.retrieval import (
    LIST_SYNC_CONNECTIONS,
    Fetched,
    FetchOutcome,
    HttpResult,
    Purpose,
)
from rdptrust.net.http import USER_AGENT, ProxyRoute, fetch, retrieval_client
from rdptrust.pki.windows import ctl_url

#: The files of each list, in the order Windows fetches them (WINDOWS.md §2; the
#: disallowed list's sequence file name follows the trusted list's).
CTL_FILES: Mapping[Purpose, tuple[str, ...]] = MappingProxyType(
    {
        Purpose.ROOT_LIST: ("authrootseq.txt", "authrootstl.cab"),
        Purpose.DISALLOWED_LIST: ("disallowedcertseq.txt", "disallowedcertstl.cab"),
        Purpose.PIN_RULES: ("pinrulesstl.cab",),
    }
)
_CAB_SIGNATURE = b"MSCF"
_SEQUENCE = re.compile(rb"^\s*[0-9A-Fa-f]{1,64}\s*$")


def _checked(name: str, result: HttpResult) -> HttpResult:
    """An answer that is not a sequence number or a cabinet is unusable."""
    if result.outcome != FetchOutcome.OK:
        return result
    body = result.body or b""
    ok = body.startswith(_CAB_SIGNATURE) if name.endswith(".cab") else bool(_SEQUENCE.match(body))
    if ok:
        return replace(result, body=None, error=None)
    what = "not a cabinet file" if name.endswith(".cab") else "not a sequence number"
    return replace(result, outcome=FetchOutcome.INVALID, body=None, error=what)


async def _sync_one(
    client: httpx.AsyncClient, purpose: Purpose, directory: str, timeout: float
) -> list[Fetched]:
    made: list[Fetched] = []
    for name in CTL_FILES[purpose]:
        url = ctl_url(directory, name, "")
        result = await fetch(
            ctl_url(directory, name, secrets.token_hex(8)), timeout=timeout, client=client
        )
        # named without its random query string; the connects made are kept (the model
        # charges a refused one as Windows pays it)
        result = _checked(name, replace(result, url=url))
        made.append(Fetched(purpose, url, result, detail=result.error))
        if result.outcome != FetchOutcome.OK:
            break
    return made


async def sync_lists(
    lists: Sequence[Purpose],
    directory: str,
    *,
    timeout: float,
    proxy: str | None = None,
    route: ProxyRoute | None = None,
    user_agent: str = USER_AGENT,
) -> tuple[Fetched, ...]:
    """Fetch each of *lists* from *directory* (an ``http(s)`` folder URL), the lists in
    parallel, each list's files in order, through *proxy* when given (CryptoAPI's static
    WinHTTP proxy) or the proxy *route* picks per URL (a PAC script); a ``file:`` folder
    fetches nothing. *user_agent* is the modelled client's CryptoAPI User-Agent."""
    if not lists or not directory.lower().startswith(("http://", "https://")):
        return ()
    async with retrieval_client(
        timeout,
        proxy=proxy,
        max_connections=LIST_SYNC_CONNECTIONS,
        route=route,
        user_agent=user_agent,
    ) as client:
        batches = await asyncio.gather(*(_sync_one(client, p, directory, timeout) for p in lists))
    return tuple(f for batch in batches for f in batch)
