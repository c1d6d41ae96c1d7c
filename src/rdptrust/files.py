"""Writing files safely: atomic replacement, the umask respected, private modes for secrets.

- A new file gets ``0666`` less the process umask, as ``open()`` would give it; a file
  rewritten keeps the mode it had (``known_hosts2`` left 0600 by its owner stays 0600).
- A secret (``mode=PRIVATE_MODE``) is created 0600 on POSIX from its first byte. Windows has
  no POSIX modes: the temporary file is restricted with ``icacls`` to the current user
  (inheritance removed, full control granted to that user only) before anything is
  written to it; when that fails, a warning line on standard error says the file is
  not restricted.
- A device or a pipe already there (``/dev/null``, ``/dev/stdout`` into a pipe, a shell's
  ``>(gzip > f)``) is written in place: it cannot be replaced, and must not be (a
  regular file would take the place of ``/dev/null``). A secret is never written to one.
- :func:`state_lock` serialises read-modify-write cycles of shared state files (the CA
  register, the CRL, the pinned store) across processes with ``filelock``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from rdptrust.errors import StoreError

PRIVATE_MODE = 0o600
#: An ordinary file: the umask for a new one, the old mode for one rewritten (the default).
PUBLIC_MODE: None = None
#: True on Windows, where files have ACLs instead of POSIX modes (a seam for tests).
WINDOWS = sys.platform == "win32"
#: Seconds a command waits for another one holding a state file's lock.
LOCK_TIMEOUT = 60.0
_NEW_FILE_MODE = 0o666
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_OPEN_FLAGS |= getattr(os, "O_NOFOLLOW", 0)


def _warn(message: str) -> None:
    sys.stderr.write(f"rdptrust: warning: {message}\n")
    sys.stderr.flush()


def restrict_to_current_user(path: Path) -> str | None:
    """Windows: limit *path*'s ACL to the current user; the reason it failed, or None."""
    user = os.environ.get("USERNAME")
    if not user:
        return "USERNAME is not set"
    domain = os.environ.get("USERDOMAIN")
    principal = f"{domain}\\{user}" if domain else user
    try:
        done = subprocess.run(
            ["icacls", str(path), "/inheritance:r", "/grant:r", f"{principal}:F"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"icacls could not run: {exc}"
    if done.returncode != 0:
        detail = (done.stdout + done.stderr).decode("utf-8", "replace").strip().splitlines()
        return f"icacls exited {done.returncode}" + (f": {detail[-1]}" if detail else "")
    return None


def _existing_mode(target: Path) -> int | None:
    try:
        info = os.stat(target)
    except OSError:
        return None
    return stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else None


def _create_temporary(directory: Path, name: str, mode: int) -> tuple[int, Path]:
    for _ in range(100):
        tmp = directory / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            # The kernel applies the umask to *mode*, exactly as for any new file.
            return os.open(tmp, _OPEN_FLAGS, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {directory / name}")


def _is_device_or_pipe(target: Path) -> bool:
    """Whether *target* is there and is no file or folder: a device (/dev/null), a pipe
    (/dev/stdout into one, a shell's ``>(...)``) or a socket."""
    try:
        info = os.stat(target)
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode))


@contextlib.contextmanager
def _written_in_place(target: Path) -> Iterator[BinaryIO]:
    """A handle on the device or pipe *target* itself: replacing it would put a regular
    file where ``/dev/null`` was, and a pipe has no folder to stage a file in."""
    try:
        fd = os.open(target, os.O_WRONLY | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
    except OSError as exc:
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike[str], mode: int | None) -> Iterator[BinaryIO]:
    """A binary handle whose contents replace *path* only when the block ends cleanly.

    A secret's temporary file is private from its creation, so a private key is never
    readable by others, not even for a moment.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    private = mode is not None
    if _is_device_or_pipe(target):
        if private:
            raise StoreError(f"{target} is not a regular file; a secret is written only to one")
        with _written_in_place(target) as handle:
            yield handle
        return
    keep = None if private or WINDOWS else _existing_mode(target)
    try:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except FileExistsError as exc:
            # a file where a folder of the path should be: say that, not "File exists"
            raise NotADirectoryError(
                errno.ENOTDIR, f"{exc.filename or directory} is a file, not a folder"
            ) from exc
        fd, tmp = _create_temporary(directory, target.name, mode or _NEW_FILE_MODE)
    except OSError as exc:
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            if private and WINDOWS:
                reason = restrict_to_current_user(tmp)
                if reason is not None:
                    _warn(
                        f"{target} holds a secret but is not restricted to the current user "
                        f'({reason}); restrict it with: icacls "{target}" /inheritance:r '
                        '/grant:r "%USERNAME%:F"'
                    )
            elif not WINDOWS and (private or keep is not None):
                wanted = (mode or 0) if private else keep
                assert wanted is not None
                if hasattr(os, "fchmod"):
                    os.fchmod(handle.fileno(), wanted)
                else:  # pragma: no cover - POSIX Pythons all have fchmod
                    os.chmod(tmp, wanted)
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


def write_atomic(path: str | os.PathLike[str], data: bytes | str, mode: int | None = None) -> Path:
    """Write *data* to *path* so that readers see the old file or the new one, never half.

    *mode* ``None`` is an ordinary file (umask, or the mode of the file it replaces);
    :data:`PRIVATE_MODE` a secret.
    """
    with _atomic_file(path, mode) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def write_atomic_lines(
    path: str | os.PathLike[str], lines: Iterable[str], mode: int | None = None
) -> Path:
    """Like :func:`write_atomic`, for text produced a piece at a time (UTF-8).

    The pieces are written as they come, so a large report never sits in memory whole.
    """
    with _atomic_file(path, mode) as handle:
        for piece in lines:
            handle.write(piece.encode("utf-8"))
    return Path(path)


@contextlib.contextmanager
def state_lock(path: str | os.PathLike[str], *, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the inter-process lock of state file *path* (``<path>.lock`` beside it).

    Whoever reads, changes and rewrites *path* does it inside this block, so two
    commands run at once serialise and neither loses the other's change.
    """
    import filelock  # (here: start-up of the commands that never lock stays short)

    target = Path(path)
    lock_path = str(target.with_name(target.name + ".lock"))
    # POSIX: 0644 whatever the umask, so no other user can take or hold the lock.
    # Windows has no modes (and filelock's Windows lock takes none).
    lock = (
        filelock.FileLock(lock_path, timeout=timeout)
        if WINDOWS
        else filelock.FileLock(lock_path, timeout=timeout, mode=0o644)
    )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except filelock.Timeout as exc:
        raise StoreError(
            f"{target} is locked by another rdptrust command (waited {timeout:g} s); "
            "try again when it has finished"
        ) from exc
    except OSError as exc:
        raise StoreError(f"cannot lock {target}: {exc.strerror or exc}") from exc
    try:
        yield
    finally:
        lock.release()
