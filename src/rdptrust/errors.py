"""The whole rdptrust exception tree.

::

    RdptrustError
    ├── ProtocolError
    │   ├── LocalProtocolError      we were asked to build something the spec forbids
    │   └── RemoteProtocolError     the peer sent bytes that break the spec (carries the offset)
    ├── TransportError              carries host and port
    │   ├── ConnectError            refused, unreachable, reset, DNS failure
    │   ├── TransportTimeout        a step got no answer within its time-out
    │   └── TlsError                the TLS handshake or record layer failed
    ├── PkiError                    a certificate, CRL, OCSP response or trust source is unusable
    ├── StoreError                  the inventory or a known-hosts file cannot be read or written
    │   └── AlreadyRecorded         a scan's target was recorded already (by another worker)
    ├── LocalResourceError          this machine ran out of something (open files, buffers, memory)
    └── UsageError                  arguments or input files given by the user are wrong
        └── DataError               an input file's content is not what the command reads

Library code raises only these. Errors from lower libraries are mapped once at the
boundary with ``raise ... from exc``, so the message here is what a user reads.
"""

from __future__ import annotations

import errno


class RdptrustError(Exception):
    """Root of every error rdptrust raises on purpose."""

    #: A short stable name for JSON output and logs.
    kind = "error"


class ProtocolError(RdptrustError):
    kind = "protocol"


class LocalProtocolError(ProtocolError):
    """We were asked to build a PDU the specification does not allow."""

    kind = "local_protocol"


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that do not follow the specification."""

    kind = "remote_protocol"

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        if offset is not None:
            message = f"{message} (at byte offset {offset})"
        super().__init__(message)


class TransportError(RdptrustError):
    kind = "transport"

    def __init__(self, message: str, host: str = "", port: int = 0) -> None:
        self.host = host
        self.port = port
        super().__init__(message)


class ConnectError(TransportError):
    kind = "connect"


class TransportTimeout(TransportError):
    kind = "timeout"


class TlsError(TransportError):
    kind = "tls"


class PkiError(RdptrustError):
    kind = "pki"


class StoreError(RdptrustError):
    kind = "store"


class AlreadyRecorded(StoreError):
    """The target is recorded already: by this process earlier, or by another worker of a
    queued scan that took it over when this one's lease passed. Nothing was changed."""


class UsageError(RdptrustError):
    kind = "usage"


class WorkerError(RdptrustError):
    """A scan worker process could not start or ended while it held targets: not the
    hosts' fault; the scan stops and those targets stay pending."""

    kind = "worker"


#: errno values that name a limit of this machine, never a fact about the peer.
LOCAL_RESOURCE_ERRNOS = frozenset(
    code
    for code in (
        getattr(errno, name, None) for name in ("EMFILE", "ENFILE", "ENOBUFS", "ENOMEM", "ENOSPC")
    )
    if code is not None
)


class LocalResourceError(RdptrustError):
    """A step could not be tried because this machine hit a limit (too many open files,
    no buffer space, no memory). Says nothing about the host: a scan must not record it
    as the host's result."""

    kind = "local_resource"


def local_resource_error(exc: BaseException) -> OSError | None:
    """The OSError in *exc*'s chain that names a local limit, or None."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in LOCAL_RESOURCE_ERRNOS:
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def local_limit_text(exc: OSError) -> str:
    """What *exc* says about this machine, in words a user can act on."""
    name = errno.errorcode.get(exc.errno or 0, "error")
    detail = f"{name}: {exc.strerror}" if exc.strerror else name
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        return f"ran out of open files ({detail}): lower --concurrency or raise 'ulimit -n'"
    if exc.errno == getattr(errno, "ENOSPC", None):
        return f"ran out of disk space ({detail})"
    return f"ran out of buffer space or memory ({detail}): lower --concurrency"


class DataError(UsageError):
    """An input file's content is not what the command reads (a CAPI2 log, a client-state
    document): exit 65, sysexits EX_DATAERR."""

    kind = "data"
