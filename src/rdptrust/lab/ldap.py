"""The lab's LDAP CRL distribution point and AIA, as AD CS publishes them.

:class:`LdapMode` says how the ``ldap://`` URLs written into the host certificate
behave:

============  ===============================================================================
mode          what the client meets
============  ===============================================================================
ok            a real ``slapd`` on loopback serving the issuing CA's CRL
              (``certificateRevocationList;binary``) and certificate (``cACertificate``)
refuse        a port bound but never listening: every connect is refused
blackhole     a listener that accepts and never answers
dc            ``ldap:///DN`` with no host, as AD CS writes it: the DCs of ``lab.test`` come
              from a real ``dnsmasq`` on loopback (SRV ``_ldap._tcp.dc._msdcs.lab.test``:
              first a refusing DC, then the ``slapd``); diagnose with
              ``--domain lab.test --dns-server`` the printed address
============  ===============================================================================

``slapd`` (Debian ``slapd``) and ``dnsmasq`` run from a throwaway configuration in a
private folder and stop with the lab; a missing program is a :class:`UsageError`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import shutil
import socket
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from rdptrust.errors import UsageError
from rdptrust.lab.certs import LabCa, PkiUrls
from rdptrust.net.service import AsyncService

#: The lab's AD domain and the suffix of its directory.
LAB_DOMAIN = "lab.test"
SUFFIX = "dc=lab,dc=test"
CDP_DN = f"cn=rdptrust Lab Issuing CA,cn=CDP,cn=Public Key Services,{SUFFIX}"
AIA_DN = f"cn=rdptrust Lab Issuing CA,cn=AIA,cn=Public Key Services,{SUFFIX}"
_START_S = 10.0
_SCHEMA = Path("/etc/ldap/schema/core.schema")


class LdapMode(enum.StrEnum):
    """How the lab's ldap:// URLs behave (see the module docstring)."""

    OK = "ok"
    REFUSE = "refuse"
    BLACKHOLE = "blackhole"
    DC = "dc"


def _program(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise UsageError(f"{name} is not installed (Debian package {name}); the LDAP lab needs it")
    return found


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _ldif(ca: LabCa) -> str:
    crl = ca.crl("intermediate").public_bytes(serialization.Encoding.DER)
    arl = ca.crl("root").public_bytes(serialization.Encoding.DER)
    cert = ca.intermediate.public_bytes(serialization.Encoding.DER)
    b64 = base64.b64encode
    entries = [
        (SUFFIX, ["objectClass: dcObject", "objectClass: organization", "dc: lab", "o: lab"]),
        (f"cn=Public Key Services,{SUFFIX}", ["objectClass: applicationProcess"]),
        (f"cn=CDP,cn=Public Key Services,{SUFFIX}", ["objectClass: applicationProcess"]),
        (f"cn=AIA,cn=Public Key Services,{SUFFIX}", ["objectClass: applicationProcess"]),
        (
            CDP_DN,
            [
                "objectClass: cRLDistributionPoint",
                f"certificateRevocationList;binary:: {b64(crl).decode()}",
            ],
        ),
        (
            AIA_DN,
            [
                "objectClass: applicationProcess",
                "objectClass: certificationAuthority",
                f"cACertificate;binary:: {b64(cert).decode()}",
                f"certificateRevocationList;binary:: {b64(crl).decode()}",
                f"authorityRevocationList;binary:: {b64(arl).decode()}",
            ],
        ),
    ]
    blocks = []
    for dn, lines in entries:
        cn = dn.split(",", 1)[0].partition("=")[2]
        extra = [] if dn == SUFFIX else [f"cn: {cn}"]
        blocks.append("\n".join([f"dn: {dn}", *lines, *extra]))
    return "\n\n".join(blocks) + "\n"


def _slapd_files(folder: Path, ca: LabCa) -> tuple[Path, Path]:
    """A throwaway slapd configuration and the directory's data, in *folder*."""
    if not _SCHEMA.exists():
        raise UsageError(f"{_SCHEMA} is missing (Debian package slapd)")
    (folder / "db").mkdir(parents=True, mode=0o700)
    conf = folder / "slapd.conf"
    conf.write_text(
        f"include {_SCHEMA}\npidfile {folder / 'slapd.pid'}\nmodulepath /usr/lib/ldap\n"
        f'moduleload back_mdb\ndatabase mdb\nsuffix "{SUFFIX}"\n'
        f"directory {folder / 'db'}\nmaxsize 10485760\naccess to * by * read\n"
    )
    data = folder / "data.ldif"
    data.write_text(_ldif(ca))
    return conf, data


class LdapLab(AsyncService):
    """The LDAP side of the lab in *mode*, for *ca*, listening on *host* (loopback)."""

    def __init__(self, mode: LdapMode, ca: LabCa, directory: Path, host: str = "127.0.0.1"):
        self.mode = mode
        self.ca = ca
        self.directory = directory
        self.host = host
        self.port = 0
        #: ``ADDR:PORT`` of the lab's DNS server (``dc`` mode; None otherwise).
        self.dns_server: str | None = None
        self._procs: list[asyncio.subprocess.Process] = []
        self._held: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        try:
            if self.mode is LdapMode.REFUSE:
                self._held = socket.socket()
                self._held.bind((self.host, 0))  # bound, never listening: refused
                self.port = self._held.getsockname()[1]
            elif self.mode is LdapMode.BLACKHOLE:
                self._server = await asyncio.start_server(self._hold, self.host, 0)
                self.port = self._server.sockets[0].getsockname()[1]
            else:
                self.port = await self._slapd()
                if self.mode is LdapMode.DC:
                    await self._dnsmasq()
        except BaseException:
            await self.stop()
            raise

    async def _hold(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)  # accepted, read from never, answered never

    async def _slapd(self) -> int:
        slapd, slapadd = _program("slapd"), _program("slapadd")
        conf, data = _slapd_files(self.directory / "slapd", self.ca)
        load = await asyncio.create_subprocess_exec(
            slapadd,
            "-f",
            str(conf),
            "-l",
            str(data),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await load.communicate()
        if load.returncode != 0:
            raise UsageError(f"slapadd failed: {err.decode(errors='replace').strip()[:200]}")
        port = _free_port(self.host)
        proc = await asyncio.create_subprocess_exec(
            slapd,
            "-f",
            str(conf),
            "-h",
            f"ldap://{self.host}:{port}/",
            "-d",
            "0",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self._procs.append(proc)
        await self._wait_listening(port, "slapd", proc)
        return port

    async def _dnsmasq(self) -> None:
        dnsmasq = _program("dnsmasq")
        port = _free_port(self.host)
        # a refusing DC first (priority 0), then the slapd (priority 10): the DC locator's
        # order, so the diagnosis shows a DC tried and passed over
        dead = socket.socket()
        dead.bind((self.host, 0))
        self._dead = dead
        name = f"_ldap._tcp.dc._msdcs.{LAB_DOMAIN}"
        proc = await asyncio.create_subprocess_exec(
            dnsmasq, "-k", f"--port={port}", "--no-resolv", "--no-hosts",
            f"--listen-address={self.host}", "--bind-interfaces", "--conf-file=/dev/null",
            "--pid-file=", f"--srv-host={name},{self.host},{dead.getsockname()[1]},0,100",
            f"--srv-host={name},{self.host},{self.port},10,100",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        self._procs.append(proc)
        await asyncio.sleep(0.2)
        if proc.returncode is not None:
            raise UsageError("dnsmasq did not start")
        self.dns_server = f"{self.host}:{port}"

    async def _wait_listening(self, port: int, what: str, proc: asyncio.subprocess.Process) -> None:
        deadline = time.monotonic() + _START_S
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise UsageError(f"{what} exited at start (code {proc.returncode})")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(self.host, port)
                writer.close()
                return
            await asyncio.sleep(0.05)
        raise UsageError(f"{what} does not listen on {self.host}:{port} after {_START_S:g} s")

    async def stop(self) -> None:
        for proc in self._procs:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 5.0)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        self._procs = []
        for writer in self._writers:
            writer.close()
        self._writers = []
        if self._server is not None:
            self._server.close()
            self._server = None
        for sock in (self._held, getattr(self, "_dead", None)):
            if sock is not None:
                sock.close()
        self._held = None

    def urls(self, base: PkiUrls) -> PkiUrls:
        """*base* with the host certificate's CRL and caIssuers on LDAP and no OCSP (so
        the LDAP CRL is what the client checks)."""
        where = "" if self.mode is LdapMode.DC else f"{self.host}:{self.port}"
        # the AD CS defaults: CDP and AIA objects, their attribute and objectClass test
        crl = (
            f"ldap://{where}/{_quote(CDP_DN)}"
            "?certificateRevocationList?base?objectClass=cRLDistributionPoint"
        )
        aia = (
            f"ldap://{where}/{_quote(AIA_DN)}?cACertificate?base?objectClass=certificationAuthority"
        )
        return PkiUrls(
            crl=crl,
            ocsp=None,
            ca_issuers=aia,
            issuer_crl=base.issuer_crl,
            root_ca_issuers=base.root_ca_issuers,
        )


def _quote(dn: str) -> str:
    return dn.replace(" ", "%20")
