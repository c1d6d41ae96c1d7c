"""Writing files safely: atomic replacement, private modes for secrets."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from rdptrust.errors import StoreError

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike[str], mode: int) -> Iterator[BinaryIO]:
    """A binary handle whose contents replace *path* only when the block ends cleanly.

    The temporary file is created with *mode* from the start, so a private key is
    never readable by others, not even for a moment.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from exc
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from exc
        raise


def write_atomic(path: str | os.PathLike[str], data: bytes | str, mode: int = PUBLIC_MODE) -> Path:
    """Write *data* to *path* so that readers see the old file or the new one, never half."""
    with _atomic_file(path, mode) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def write_atomic_lines(
    path: str | os.PathLike[str], lines: Iterable[str], mode: int = PUBLIC_MODE
) -> Path:
    """Like :func:`write_atomic`, for text produced a piece at a time (UTF-8).

    The pieces are written as they come, so a large report never sits in memory whole.
    """
    with _atomic_file(path, mode) as handle:
        for piece in lines:
            handle.write(piece.encode("utf-8"))
    return Path(path)
