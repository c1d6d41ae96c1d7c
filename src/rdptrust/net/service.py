"""The start/stop shape shared by rdptrust's servers (lab endpoints, responders, exporter)."""

from __future__ import annotations

from types import TracebackType
from typing import Self


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
