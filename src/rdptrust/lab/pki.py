"""The lab's PKI responders: root list, AIA, CRL and OCSP on one small HTTP server.

These are the URLs the Windows chain engine fetches while a user looks at "Securing
remote connection" (PROTOCOL.md §5). Each purpose has a :class:`ResponderMode`, so the
lab can answer, answer late, never answer, refuse the connection, say 404, or send
rubbish:

============  ========================================================================
mode          on the wire
============  ========================================================================
ok            the real content (below)
delay:S       the real content after S seconds
blackhole     the TCP connection is accepted and the request read; no answer ever
              comes, the connection is held until the client leaves or the server stops
refuse        the purpose's URLs point at a port with a bound, non-listening socket, so
              the TCP connect is refused (``ECONNREFUSED``)
404           ``404 Not Found``
garbage       ``200 OK`` with the usual content type and bytes that are no valid content
============  ========================================================================

Paths and content in ``ok`` mode:

- root list (``root_list``): :data:`ROOT_LIST_PATH` and :data:`DISALLOWED_LIST_PATH`, the
  Windows Update paths. Each is a valid, uncompressed Microsoft Cabinet file holding one
  file, ``authroot.stl`` or ``disallowedcert.stl``. Its content is a short placeholder
  text, not a signed certificate trust list: the lab reproduces the fetch and its timing,
  not the trust decision Windows takes from the list.
- AIA (``aia``): :data:`AIA_INTERMEDIATE_PATH` and :data:`AIA_ROOT_PATH`, the issuer
  certificates in DER (``application/pkix-cert``).
- CRL (``crl``): :data:`CRL_INTERMEDIATE_PATH` and :data:`CRL_ROOT_PATH`, a new CRL signed
  by that issuer on every request, listing what the :class:`LabCa` has revoked, in DER
  (``application/pkix-crl``).
- OCSP (``ocsp``): ``POST`` :data:`OCSP_PATH` (``application/ocsp-request``) and
  ``GET /ocsp/<base64 request>`` (RFC 6960 appendix A). The answer is signed by the
  issuer the request names (the intermediate for host certificates, the root for the
  intermediate): ``good``, ``revoked`` with time and reason, or ``unknown`` for a serial
  the issuer never issued; ``unauthorized`` for an issuer that is not the lab's, and
  ``malformedRequest`` for bytes that are no OCSP request. The request's nonce is echoed.

Without a CA (``ca=None``) the AIA, CRL and OCSP paths answer 404 in ``ok`` mode; a CA
can be set later (:attr:`PkiResponder.ca`), since the CA's certificates carry URLs that
exist only once the responder has its port.

Limits: request headers :data:`MAX_HEADER_BYTES`, bodies :data:`MAX_BODY_BYTES`, a whole
request must arrive within ``request_timeout_s``, at most ``max_connections`` at once
(more are closed at once). Every response says ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import ipaddress
import math
import socket
import struct
import time
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal, NamedTuple

import h11
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from rdptrust.errors import UsageError
from rdptrust.lab.certs import IssuerName, LabCa, PkiUrls
from rdptrust.net.service import AsyncService, close_server

ROOT_LIST_DIRECTORY = "/msdownload/update/v3/static/trustedr/en/"
ROOT_LIST_PATH = ROOT_LIST_DIRECTORY + "authrootstl.cab"
DISALLOWED_LIST_PATH = ROOT_LIST_DIRECTORY + "disallowedcertstl.cab"
AIA_INTERMEDIATE_PATH = "/aia/intermediate.crt"
AIA_ROOT_PATH = "/aia/root.crt"
CRL_INTERMEDIATE_PATH = "/crl/intermediate.crl"
CRL_ROOT_PATH = "/crl/root.crl"
OCSP_PATH = "/ocsp"

MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
_READ_CHUNK = 16 * 1024
#: Longest ``delay:S`` accepted, in seconds.
MAX_DELAY_S = 3600.0

#: Bytes sent in ``garbage`` mode: no DER (tag 0 is invalid), no cabinet, no text format.
GARBAGE = b"\x00\xff rdptrust lab: not a certificate, CRL, OCSP response or cabinet \xfe\x00\n"
PLACEHOLDER_STL = (
    b"rdptrust lab placeholder for %s: not a signed certificate trust list.\r\n"
    b"It stands in for the Windows Update file so that fetching it can be timed.\r\n"
)

Purpose = Literal["root_list", "aia", "crl", "ocsp"]
PURPOSES: tuple[Purpose, ...] = ("root_list", "aia", "crl", "ocsp")
ModeKind = Literal["ok", "delay", "blackhole", "refuse", "404", "garbage"]
_MODE_KINDS: tuple[str, ...] = ("ok", "delay", "blackhole", "refuse", "404", "garbage")

_CONTENT_TYPES: dict[str, str] = {
    "root_list": "application/vnd.ms-cab-compressed",
    "aia": "application/pkix-cert",
    "crl": "application/pkix-crl",
    "ocsp": "application/ocsp-response",
}
_AIA_PATHS: dict[str, IssuerName] = {AIA_INTERMEDIATE_PATH: "intermediate", AIA_ROOT_PATH: "root"}
_CRL_PATHS: dict[str, IssuerName] = {CRL_INTERMEDIATE_PATH: "intermediate", CRL_ROOT_PATH: "root"}


@dataclass(frozen=True)
class ResponderMode:
    """How one purpose answers; ``delay_s`` counts only for ``delay``."""

    kind: str = "ok"
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in _MODE_KINDS:
            raise UsageError(f"unknown responder mode {self.kind!r}; {_MODE_HELP}")
        if not (math.isfinite(self.delay_s) and 0 <= self.delay_s <= MAX_DELAY_S):
            raise UsageError(f"delay must be 0 to {MAX_DELAY_S:g} seconds, not {self.delay_s}")

    @classmethod
    def parse(cls, text: str) -> ResponderMode:
        """Parse ``ok``, ``delay:S``, ``blackhole``, ``refuse``, ``404`` or ``garbage``."""
        value = text.strip().lower()
        if value.startswith("delay:"):
            try:
                seconds = float(value.partition(":")[2])
            except ValueError:
                raise UsageError(f"bad delay in {text!r}: give seconds, e.g. delay:2.5") from None
            return cls("delay", seconds)
        if value == "delay":
            raise UsageError("delay needs seconds, e.g. delay:2.5")
        if value not in _MODE_KINDS:
            raise UsageError(f"unknown responder mode {text!r}; {_MODE_HELP}")
        return cls(value)

    def __str__(self) -> str:
        return f"delay:{self.delay_s:g}" if self.kind == "delay" else self.kind


_MODE_HELP = "use ok, delay:S, blackhole, refuse, 404 or garbage"
OK = ResponderMode("ok")


@dataclass(frozen=True)
class PkiModes:
    """The mode of each responder purpose."""

    root_list: ResponderMode = OK
    aia: ResponderMode = OK
    crl: ResponderMode = OK
    ocsp: ResponderMode = OK

    def for_purpose(self, purpose: Purpose) -> ResponderMode:
        mode: ResponderMode = getattr(self, purpose)
        return mode


class PkiRequest(NamedTuple):
    """One request the responder received: its purpose (``other`` for unknown paths)."""

    purpose: str
    path: str
    at: float
    """``time.monotonic()`` when the whole request had arrived."""


# -- Microsoft Cabinet (MS-CAB) ------------------------------------------------------------

_CAB_BLOCK = 32768


def cab_checksum(data: bytes, seed: int = 0) -> int:
    """The CFDATA checksum of MS-CAB: XOR of little-endian 32-bit words.

    A 1-3 byte tail is folded in big-endian order, as Microsoft's implementation does.
    """
    checksum = seed
    whole = len(data) - len(data) % 4
    for (word,) in struct.iter_unpack("<I", data[:whole]):
        checksum ^= word
    tail = 0
    for byte in data[whole:]:
        tail = (tail << 8) | byte
    return checksum ^ tail


def build_cabinet(file_name: str, content: bytes, when: dt.datetime | None = None) -> bytes:
    """A single-folder, uncompressed cabinet holding one file (MS-CAB 2.1-2.5)."""
    when = when or dt.datetime.now(dt.UTC)
    name = file_name.encode("ascii") + b"\x00"
    blocks = [content[i : i + _CAB_BLOCK] for i in range(0, len(content), _CAB_BLOCK)] or [b""]
    header_size, folder_size = 36, 8
    cffile_size = 16 + len(name)
    first_data = header_size + folder_size + cffile_size
    total = first_data + sum(8 + len(block) for block in blocks)
    cfheader = b"MSCF" + struct.pack(
        "<IIIIIBBHHHHH",
        0,  # reserved1
        total,  # cbCabinet
        0,  # reserved2
        header_size + folder_size,  # coffFiles
        0,  # reserved3
        3,  # versionMinor
        1,  # versionMajor
        1,  # cFolders
        1,  # cFiles
        0,  # flags
        0x5244,  # setID
        0,  # iCabinet
    )
    cffolder = struct.pack("<IHH", first_data, len(blocks), 0)  # typeCompress 0: none
    dos_date = ((when.year - 1980) << 9) | (when.month << 5) | when.day
    dos_time = (when.hour << 11) | (when.minute << 5) | (when.second // 2)
    cffile = struct.pack("<IIHHHH", len(content), 0, 0, dos_date, dos_time, 0x20) + name
    cfdata = b""
    for block in blocks:
        sizes = struct.pack("<HH", len(block), len(block))
        cfdata += struct.pack("<I", cab_checksum(sizes, cab_checksum(block))) + sizes + block
    cabinet = cfheader + cffolder + cffile + cfdata
    assert len(cabinet) == total
    return cabinet


# -- OCSP ----------------------------------------------------------------------------------


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def ocsp_answer(ca: LabCa, data: bytes, now: dt.datetime | None = None) -> bytes:
    """The DER OCSP response the lab gives to the DER OCSP request *data*."""
    try:
        request = ocsp.load_der_ocsp_request(data)
        algorithm = request.hash_algorithm
        extensions = list(request.extensions)
    except (ValueError, UnsupportedAlgorithm):
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    issuer: IssuerName | None = None
    for candidate in ("intermediate", "root"):
        cert = ca.issuer_certificate(candidate)
        key_bits = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        )
        if _digest(algorithm, cert.subject.public_bytes()) == request.issuer_name_hash and (
            _digest(algorithm, key_bits) == request.issuer_key_hash
        ):
            issuer = candidate
            break
    if issuer is None:
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    serial = request.serial_number
    revocation = ca.revocation(serial)
    if ca.issuer_of(serial) != issuer:
        status = ocsp.OCSPCertStatus.UNKNOWN
        revocation = None
    elif revocation is not None:
        status = ocsp.OCSPCertStatus.REVOKED
    else:
        status = ocsp.OCSPCertStatus.GOOD
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    issuer_cert = ca.issuer_certificate(issuer)
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=serial,
            algorithm=algorithm,
            cert_status=status,
            this_update=now - dt.timedelta(minutes=1),
            next_update=now + dt.timedelta(hours=1),
            revocation_time=revocation.revoked_at if revocation else None,
            revocation_reason=revocation.reason if revocation else None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer_cert)
        .certificates([issuer_cert])
    )
    for extension in extensions:
        if isinstance(extension.value, x509.OCSPNonce):
            builder = builder.add_extension(extension.value, critical=False)
    response = builder.sign(ca.issuer_key(issuer), hashes.SHA256())
    return response.public_bytes(serialization.Encoding.DER)


def _decode_ocsp_get(encoded: str) -> bytes | None:
    text = urllib.parse.unquote(encoded).replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


# -- the server ----------------------------------------------------------------------------


class _RequestTooLarge(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


def purpose_of(path: str) -> Purpose | None:
    """Which purpose a request path belongs to; ``None`` for paths the lab does not serve."""
    if path.startswith(ROOT_LIST_DIRECTORY):
        return "root_list"
    if path in _AIA_PATHS:
        return "aia"
    if path in _CRL_PATHS:
        return "crl"
    if path == OCSP_PATH or path.startswith(OCSP_PATH + "/"):
        return "ocsp"
    return None


class PkiResponder(AsyncService):
    """One HTTP server for the lab's root list, AIA, CRL and OCSP URLs.

    Use it as an async context manager (or call :meth:`start` and :meth:`stop`).
    *port* 0 takes a free port. *latency_ms* delays every answer, to emulate a WAN.
    """

    def __init__(
        self,
        ca: LabCa | None,
        modes: PkiModes = PkiModes(),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: int = 0,
        max_connections: int = 128,
        request_timeout_s: float = 10.0,
    ) -> None:
        if latency_ms < 0:
            raise UsageError(f"latency must be 0 ms or more, not {latency_ms}")
        if not 0 <= port <= 65535:
            raise UsageError(f"port must be 0 to 65535, not {port}")
        #: The CA whose certificates, CRLs and OCSP answers are served; may be set later.
        self.ca = ca
        self.modes = modes
        self.host = host
        self.port = port
        self.latency_ms = latency_ms
        self.max_connections = max_connections
        self.request_timeout_s = request_timeout_s
        #: Every request received, in order.
        self.requests: list[PkiRequest] = []
        self._server: asyncio.Server | None = None
        self._refused: socket.socket | None = None
        self._url_host = ""
        self._refused_port = 0
        self._connections: set[asyncio.Task[None]] = set()
        self._closing = False
        self._cabinets = {
            ROOT_LIST_PATH: build_cabinet("authroot.stl", PLACEHOLDER_STL % b"authroot.stl"),
            DISALLOWED_LIST_PATH: build_cabinet(
                "disallowedcert.stl", PLACEHOLDER_STL % b"disallowedcert.stl"
            ),
        }

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise UsageError(f"cannot resolve {self.host!r}: {exc.strerror}") from exc
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            if any(self.modes.for_purpose(p).kind == "refuse" for p in PURPOSES):
                # Bound but never listening: a connect to it is refused for as long as
                # the responder runs, and no other program can take the port meanwhile.
                self._refused = socket.socket(family, socket.SOCK_STREAM)
                self._refused.bind((address[0], 0))
                self._refused_port = self._refused.getsockname()[1]
            self._server = await asyncio.start_server(
                self._handle, sock=sock, backlog=self.max_connections
            )
        except OSError as exc:
            sock.close()
            if self._refused is not None:
                self._refused.close()
                self._refused = None
            raise UsageError(
                f"cannot listen on {self.host} port {self.port}: {exc.strerror or exc}"
            ) from exc
        bound_host, self.port = sock.getsockname()[:2]
        ip = ipaddress.ip_address(bound_host)
        if ip.is_unspecified:
            ip = ipaddress.ip_address("::1" if ip.version == 6 else "127.0.0.1")
        self._url_host = f"[{ip}]" if ip.version == 6 else str(ip)
        self._closing = False

    async def stop(self) -> None:
        """Stop listening and close every connection, black-holed ones included."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closing = True
        await close_server(server, self._connections)
        # Let handlers of connections accepted during the close see _closing and end.
        await asyncio.sleep(0)
        if self._refused is not None:
            self._refused.close()
            self._refused = None

    # -- URLs ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if self._server is None:
            raise UsageError("the PKI responder is not running; start it first")
        return f"http://{self._url_host}:{self.port}"

    def _url(self, purpose: Purpose, path: str) -> str:
        base = self.base_url
        if self.modes.for_purpose(purpose).kind == "refuse":
            base = f"http://{self._url_host}:{self._refused_port}"
        return base + path

    @property
    def root_list_url(self) -> str:
        """URL of ``authrootstl.cab`` (the Automatic Root Certificates Update list)."""
        return self._url("root_list", ROOT_LIST_PATH)

    @property
    def disallowed_list_url(self) -> str:
        return self._url("root_list", DISALLOWED_LIST_PATH)

    @property
    def root_dir_url(self) -> str:
        """The folder of both lists, as Windows' ``RootDirUrl`` setting takes it."""
        return self._url("root_list", ROOT_LIST_DIRECTORY)

    @property
    def ocsp_url(self) -> str:
        return self._url("ocsp", OCSP_PATH)

    def aia_url(self, issuer: IssuerName) -> str:
        return self._url("aia", AIA_ROOT_PATH if issuer == "root" else AIA_INTERMEDIATE_PATH)

    def crl_url(self, issuer: IssuerName) -> str:
        return self._url("crl", CRL_ROOT_PATH if issuer == "root" else CRL_INTERMEDIATE_PATH)

    def urls(self) -> PkiUrls:
        """The URLs to write into lab certificates (a refused purpose points elsewhere)."""
        return PkiUrls(
            crl=self.crl_url("intermediate"),
            ocsp=self.ocsp_url,
            ca_issuers=self.aia_url("intermediate"),
            issuer_crl=self.crl_url("root"),
            root_ca_issuers=self.aia_url("root"),
        )

    # -- serving ----------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._closing or task is None or len(self._connections) >= self.max_connections:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except OSError:
            pass  # the client went away
        except asyncio.CancelledError:
            # stop() cancels held connections. End normally: on Python 3.11 the stream
            # machinery calls task.exception() on this task and logs a cancelled one.
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        try:
            async with asyncio.timeout(self.request_timeout_s):
                received = await self._read_request(conn, reader)
        except TimeoutError:
            await self._send_error(conn, writer, 408)
            return
        except h11.RemoteProtocolError as exc:
            await self._send_error(conn, writer, exc.error_status_hint)
            return
        except _RequestTooLarge as exc:
            await self._send_error(conn, writer, exc.status)
            return
        if received is None:
            return
        request, body = received
        path = request.target.decode("ascii", "replace")
        method = request.method.decode("ascii", "replace")
        purpose = purpose_of(path.partition("?")[0])
        self.requests.append(PkiRequest(purpose or "other", path, time.monotonic()))
        mode = self.modes.for_purpose(purpose) if purpose else OK
        if mode.kind == "blackhole":
            while await reader.read(_READ_CHUNK):
                pass
            return
        delay = self.latency_ms / 1000 + (mode.delay_s if mode.kind == "delay" else 0.0)
        if delay:
            await asyncio.sleep(delay)
        status, content_type, content = self._answer(purpose, mode, method, path, body)
        await self._send(conn, writer, status, content_type, content, head=method == "HEAD")

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request, bytes] | None:
        request: h11.Request | None = None
        body = bytearray()
        header_bytes = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(_READ_CHUNK)
                if request is None:
                    header_bytes += len(data)
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                # h11's own limit counts only unparsed bytes, so a head that arrives in
                # two reads can exceed it; count what the head really took.
                if header_bytes - len(conn.trailing_data[0]) > MAX_HEADER_BYTES:
                    raise _RequestTooLarge(431)
                request = event
                for name, value in event.headers:
                    if name == b"content-length" and int(value) > MAX_BODY_BYTES:
                        raise _RequestTooLarge(413)
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY_BYTES:
                    raise _RequestTooLarge(413)
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                return request, bytes(body)
            else:  # ConnectionClosed, or PAUSED which a fresh connection never reaches
                return None

    def _answer(
        self, purpose: Purpose | None, mode: ResponderMode, method: str, path: str, body: bytes
    ) -> tuple[int, str, bytes]:
        not_found = (404, "text/plain", b"not found\n")
        if purpose is None or mode.kind == "404":
            return not_found
        if method not in ("GET", "HEAD") and not (purpose == "ocsp" and method == "POST"):
            return 405, "text/plain", b"method not allowed\n"
        content_type = _CONTENT_TYPES[purpose]
        if mode.kind == "garbage":
            return 200, content_type, GARBAGE
        path = path.partition("?")[0]
        if purpose == "root_list":
            cabinet = self._cabinets.get(path)
            return (200, content_type, cabinet) if cabinet else not_found
        ca = self.ca
        if ca is None:
            return not_found
        if purpose == "aia":
            cert = ca.issuer_certificate(_AIA_PATHS[path])
            return 200, content_type, cert.public_bytes(serialization.Encoding.DER)
        if purpose == "crl":
            crl = ca.crl(_CRL_PATHS[path])
            return 200, content_type, crl.public_bytes(serialization.Encoding.DER)
        if method == "POST":
            data: bytes | None = body
        else:
            encoded = path[len(OCSP_PATH) + 1 :]
            data = _decode_ocsp_get(encoded) if encoded else None
        if not data:
            return 200, content_type, _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        return 200, content_type, ocsp_answer(ca, data)

    async def _send(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        status: int,
        content_type: str,
        content: bytes,
        *,
        head: bool = False,
    ) -> None:
        headers = [
            ("content-type", content_type),
            ("content-length", str(len(content))),
            ("connection", "close"),
            ("server", "rdptrust-lab"),
        ]
        reason = HTTPStatus(status).phrase.encode("ascii")
        out = conn.send(h11.Response(status_code=status, headers=headers, reason=reason)) or b""
        if content and not head:
            out += conn.send(h11.Data(data=content)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        writer.write(out)
        await writer.drain()

    async def _send_error(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int
    ) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        with contextlib.suppress(h11.LocalProtocolError):
            await self._send(conn, writer, status, "text/plain", b"bad request\n")
