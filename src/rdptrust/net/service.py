"""The start/stop shape shared by rdptrust's servers (lab endpoints, responders, exporter)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self


async def close_server(server: asyncio.Server, handlers: Iterable[asyncio.Task[Any]]) -> None:
    """Stop listening, cancel the connection handlers and wait until all have ended."""
    server.close()
    tasks = list(handlers)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await server.wait_closed()


class AsyncService:
    """A server used as ``async with Server(...) as server:``; subclasses define
    :meth:`start` and :meth:`stop` (both safe to call twice)."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
