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
    └── UsageError                  arguments or input files given by the user are wrong
        └── DataError               an input file exists but its content is malformed

Library code raises only these. Errors from lower libraries are mapped once at the
boundary with ``raise ... from exc``, so the message here is what a user reads.
"""

from __future__ import annotations


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


class UsageError(RdptrustError):
    kind = "usage"


class DataError(UsageError):
    """An input document (a client-state file, ...) is readable but not well-formed."""

    kind = "data"
