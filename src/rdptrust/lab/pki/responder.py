"""The lab's PKI responder: one HTTP server for the root list, AIA, CRL and OCSP URLs.

The modes and content are described in :mod:`rdptrust.lab.pki`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections import Counter, deque
from typing import NamedTuple

from rdptrust.errors import UsageError
from rdptrust.lab.certs import IssuerName, LabCa, PkiUrls
from rdptrust.lab.pki.content import (
    AIA_INTERMEDIATE_PATH,
    AIA_ROOT_PATH,
    CRL_DELTA_PATH,
    CRL_INTERMEDIATE_PATH,
    CRL_ROOT_PATH,
    DISALLOWED_LIST_PATH,
    OCSP_PATH,
    ROOT_LIST_DIRECTORY,
    ROOT_LIST_PATH,
    answer,
    gzip_bomb,
    huge_body,
    purpose_of,
    root_list_cabinets,
)
from rdptrust.lab.pki.modes import ALL_OK, OK, PURPOSES, PkiModes, Purpose
from rdptrust.net.httpserver import HttpLimits, HttpRequest, HttpResponse, HttpServer
from rdptrust.net.service import AsyncService

MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
#: Requests a responder keeps in :attr:`PkiResponder.requests`, the most recent (a lab
#: answering a fleet's diagnoses for days would otherwise keep every one).
REQUESTS_KEPT = 4096


class PkiRequest(NamedTuple):
    """One request the responder received: its purpose (``other`` for unknown paths)."""

    purpose: str
    path: str
    at: float
    """``time.monotonic()`` when the whole request had arrived."""


class PkiResponder(AsyncService):
    """One HTTP server for the lab's root list, AIA, CRL and OCSP URLs.

    Use it as an async context manager (or call :meth:`start` and :meth:`stop`).
    *port* 0 takes a free port. *latency_ms* delays every answer, to emulate a WAN.
    """

    def __init__(
        self,
        ca: LabCa | None,
        modes: PkiModes = ALL_OK,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: int = 0,
        max_connections: int = 128,
        request_timeout_s: float = 10.0,
        requests_kept: int = REQUESTS_KEPT,
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
        #: The requests received, in order: the last *requests_kept*.
        self.requests: deque[PkiRequest] = deque(maxlen=requests_kept)
        #: Every request received, counted by purpose (``other`` for unknown paths).
        self.request_counts: Counter[str] = Counter()
        self._http: HttpServer | None = None
        self._refused: socket.socket | None = None
        self._url_host = ""
        self._refused_port = 0
        self._cabinets = root_list_cabinets()

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        if self._http is not None:
            return
        loop = asyncio.get_running_loop()
        if any(self.modes.for_purpose(p).kind == "gzip-bomb" for p in PURPOSES):
            gzip_bomb()  # made before the first request, so no answer waits for it
        if any(self.modes.for_purpose(p).kind == "huge" for p in PURPOSES):
            huge_body()
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
            limits = HttpLimits(
                max_head_bytes=MAX_HEADER_BYTES,
                max_body_bytes=MAX_BODY_BYTES,
                header_timeout_s=self.request_timeout_s,
                body_timeout_s=self.request_timeout_s,
                max_connections=self.max_connections,
            )
            http = HttpServer(
                self._respond,
                host=self.host,
                port=self.port,
                sock=sock,
                limits=limits,
                keep_alive=False,
                server_name="rdptrust-lab",
            )
            await http.start()
        except (OSError, UsageError) as exc:
            sock.close()
            if self._refused is not None:
                self._refused.close()
                self._refused = None
            if isinstance(exc, UsageError):
                raise
            raise UsageError(
                f"cannot listen on {self.host} port {self.port}: {exc.strerror or exc}"
            ) from exc
        self._http = http
        bound_host, self.port = sock.getsockname()[:2]
        ip = ipaddress.ip_address(bound_host)
        if ip.is_unspecified:
            ip = ipaddress.ip_address("::1" if ip.version == 6 else "127.0.0.1")
        self._url_host = f"[{ip}]" if ip.version == 6 else str(ip)

    async def stop(self) -> None:
        """Stop listening and close every connection, black-holed ones included."""
        http, self._http = self._http, None
        if http is None:
            return
        await http.stop()
        if self._refused is not None:
            self._refused.close()
            self._refused = None

    # -- URLs ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if self._http is None:
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

    @property
    def delta_crl_url(self) -> str:
        """The intermediate's delta CRL (host certificates name it in ``delta`` mode)."""
        return self._url("crl", CRL_DELTA_PATH)

    def urls(self) -> PkiUrls:
        """The URLs to write into lab certificates (a refused purpose points elsewhere)."""
        return PkiUrls(
            crl=self.crl_url("intermediate"),
            ocsp=self.ocsp_url,
            ca_issuers=self.aia_url("intermediate"),
            issuer_crl=self.crl_url("root"),
            root_ca_issuers=self.aia_url("root"),
            delta_crl=self.delta_crl_url if self.modes.crl.kind == "delta" else None,
        )

    # -- serving ----------------------------------------------------------------------------

    async def _respond(self, request: HttpRequest) -> HttpResponse | None:
        purpose = purpose_of(request.path)
        self.requests.append(PkiRequest(purpose or "other", request.target, request.received_at))
        self.request_counts[purpose or "other"] += 1
        mode = self.modes.for_purpose(purpose) if purpose else OK
        if mode.kind == "blackhole":
            return None  # the connection is held, and never answered, until one side ends it
        delay = self.latency_ms / 1000 + (mode.delay_s if mode.kind == "delay" else 0.0)
        if delay:
            await asyncio.sleep(delay)
        status, content_type, content = answer(
            self.ca, self._cabinets, purpose, mode, request.method, request.target, request.body
        )
        headers: tuple[tuple[str, str], ...] = ()
        if mode.kind == "gzip-bomb" and status == 200:
            headers = (("Content-Encoding", "gzip, gzip"),)
        return HttpResponse(status, content, content_type, headers)
