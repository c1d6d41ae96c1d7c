"""The whole lab in one object: CA, PKI responders, host certificate and RDP endpoints.

``rdptrust lab`` and the test suite's ``lab_factory`` fixture both run a :class:`Lab`::

    async with Lab(LabConfig(cert=CertKind.CA, crl=ResponderMode.parse("blackhole"))) as lab:
        print(lab_document(lab.info()))

Start order: the PKI responder first (its URLs go into the certificates), then the CA
(when the certificate needs one), then the host certificate, written as PEM into a
private temporary directory that is removed on exit, then the endpoints.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography.x509.oid import NameOID

from rdptrust.errors import UsageError
from rdptrust.lab.certs import (
    CertKind,
    HostCredentials,
    LabCa,
    PkiUrls,
    load_host_credentials,
    make_host_credentials,
    windows_self_signed,
)
from rdptrust.lab.info import LabInfo, LabLdap, LabStandardSecurity
from rdptrust.lab.ldap import LAB_DOMAIN, LdapLab, LdapMode
from rdptrust.lab.pki import OK, PkiModes, PkiResponder, ResponderMode
from rdptrust.lab.pki.content import ocsp_answer
from rdptrust.lab.rdp import (
    DEFAULT_PROTOCOLS,
    HostileMode,
    LegacyTlsServer,
    NtlmIdentity,
    RdpEndpoint,
    RdpPolicy,
    StaplingTlsServer,
    TlsMode,
    TlsServer,
    protocol_names,
    server_context,
)
from rdptrust.lab.standard_security import StandardSecurityPolicy
from rdptrust.model.probe import NtlmInfo, OsVersion
from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.net.service import AsyncService
from rdptrust.pki.facts import certificate_facts
from rdptrust.pki.revocation import ocsp_request
from rdptrust.protocol.gcc import ENCRYPTION_METHOD_NAMES, EncryptionLevel, EncryptionMethod
from rdptrust.protocol.ntlm import Version

#: Largest ``count``: each endpoint is one listening socket.
MAX_COUNT = 256
Issuer = Literal["self", "ca"]


@dataclass(frozen=True)
class LabConfig:
    """Every option of ``rdptrust lab``.

    ``cert_file``/``key_file`` ``None`` means a certificate of kind ``cert`` is made.
    ``issuer`` ``None`` means a lab CA issues the certificate only for ``cert=ca``; ``ca``
    makes every kind CA-issued, ``self`` every kind self-signed (``ca`` then fails).
    ``require``/``hostile`` ``None`` mean no requirement and a well-behaved endpoint.
    """

    host: str = "127.0.0.1"
    port: int = 0
    count: int = 1
    cert: CertKind = CertKind.SELF_SIGNED
    cert_file: Path | None = None
    key_file: Path | None = None
    issuer: Issuer | None = None
    protocols: frozenset[SecurityProtocol] = DEFAULT_PROTOCOLS
    require: SecurityProtocol | None = None
    no_negotiation: bool = False
    root_list: ResponderMode = OK
    aia: ResponderMode = OK
    crl: ResponderMode = OK
    ocsp: ResponderMode = OK
    pki_port: int = 0
    hostile: HostileMode | None = None
    latency_ms: int = 0
    ntlm_computer: str = "WIN-LAB01"
    ntlm_domain: str = "LAB"
    ntlm_dns_domain: str | None = "lab.test"
    ntlm_version: Version = field(default_factory=lambda: Version(10, 0, 20348))
    tls_min: str = "TLSv1.2"
    tls_max: str = "TLSv1.3"
    request_timeout_s: float = 30.0
    #: Standard RDP Security methods and level; both ``None``: MCS is not answered.
    rdp_methods: EncryptionMethod | None = None
    rdp_level: EncryptionLevel | None = None
    #: Each endpoint serves its own self-signed certificate (one shared key), like a fleet.
    distinct_certs: bool = False
    #: Which TLS server the endpoints run: ``stapled`` staples the lab OCSP responder's
    #: answer (a CA-issued certificate), ``stapled-stale`` an out-of-date one, ``legacy``
    #: is a TLS 1.0 host before RFC 5746.
    tls_mode: TlsMode = TlsMode.STANDARD
    #: A CA-issued host sends its leaf only: the client fetches the intermediate over AIA.
    omit_intermediate: bool = False
    #: The host certificate's CRL and caIssuers on LDAP, behaving so (rdptrust.lab.ldap).
    ldap: LdapMode | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_COUNT:
            raise UsageError(f"count must be 1 to {MAX_COUNT}, not {self.count}")
        if not 0 <= self.port <= 65535 or (self.port and self.port + self.count - 1 > 65535):
            raise UsageError(f"ports {self.port}..{self.port + self.count - 1} are out of range")
        if (self.cert_file is None) != (self.key_file is None):
            raise UsageError("give --cert-file and --key-file together")
        if self.issuer == "self" and self.cert is CertKind.CA:
            raise UsageError("a certificate of kind 'ca' cannot be self-signed")
        if self.distinct_certs and (
            self.cert is not CertKind.SELF_SIGNED or self.issuer == "ca" or self.cert_file
        ):
            raise UsageError(
                "distinct certificates per endpoint are self-signed: drop --cert, --issuer "
                "and --cert-file"
            )
        if self.ldap is not None and not self.needs_ca:
            raise UsageError("LDAP CRL and AIA URLs need the lab CA: use --cert ca")
        if self.tls_mode in (TlsMode.STAPLED, TlsMode.STAPLED_STALE) and not self.needs_ca:
            raise UsageError("a stapled OCSP answer needs the lab CA: use --cert ca")
        if self.tls_mode is not TlsMode.STANDARD and self.distinct_certs:
            raise UsageError(f"TLS mode {self.tls_mode} serves one certificate on every endpoint")
        if self.tls_mode is TlsMode.LEGACY and (
            self.tls_min != "TLSv1.2" or self.tls_max != "TLSv1.3"
        ):
            raise UsageError("TLS mode legacy speaks TLS 1.0 only: drop --tls-min and --tls-max")
        # Validate the RDP side now, so a usage error comes before anything starts.
        self.policy()

    @property
    def needs_ca(self) -> bool:
        if self.cert_file is not None:
            return False
        if self.issuer is not None:
            return self.issuer == "ca"
        return self.cert is CertKind.CA

    def ntlm_identity(self) -> NtlmIdentity:
        return NtlmIdentity(
            computer=self.ntlm_computer,
            domain=self.ntlm_domain,
            dns_domain=self.ntlm_dns_domain,
            version=self.ntlm_version,
        )

    def policy(self) -> RdpPolicy:
        return RdpPolicy(
            protocols=self.protocols,
            required=self.require,
            negotiation=not self.no_negotiation,
            hostile=self.hostile,
            latency_ms=self.latency_ms,
            ntlm=self.ntlm_identity(),
            standard_security=self.standard_security(),
        )

    def standard_security(self) -> StandardSecurityPolicy | None:
        if self.rdp_methods is None and self.rdp_level is None:
            return None
        default = StandardSecurityPolicy()
        return StandardSecurityPolicy(
            methods=self.rdp_methods if self.rdp_methods is not None else default.methods,
            level=self.rdp_level if self.rdp_level is not None else default.level,
        )

    def pki_modes(self) -> PkiModes:
        return PkiModes(root_list=self.root_list, aia=self.aia, crl=self.crl, ocsp=self.ocsp)


class Lab(AsyncService):
    """A running lab; use as an async context manager (or :meth:`start` / :meth:`stop`)."""

    def __init__(self, config: LabConfig | None = None) -> None:
        self.config = config or LabConfig()
        self.pki: PkiResponder | None = None
        #: The lab CA; ``None`` when the host certificate is self-signed or user-supplied.
        self.ca: LabCa | None = None
        self.endpoints: list[RdpEndpoint] = []
        self._credentials: HostCredentials | None = None
        self._directory: Path | None = None
        self._ca_cert_path: Path | None = None
        self._generation = 0
        self._tls_server: TlsServer | None = None
        #: With ``distinct_certs``: each endpoint's certificate fingerprint, in order.
        self.endpoint_sha256: list[str] = []
        #: The PEM file of the chain being served.
        self.chain_path: Path | None = None
        #: The LDAP side (``config.ldap``); None without it.
        self.ldap: LdapLab | None = None

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        try:
            self._directory = Path(tempfile.mkdtemp(prefix="rdptrust-lab-"))
            os.chmod(self._directory, 0o700)
            self.pki = PkiResponder(
                None,
                config.pki_modes(),
                host=config.host,
                port=config.pki_port,
                latency_ms=config.latency_ms,
            )
            await self.pki.start()
            urls = self.pki.urls()
            if config.needs_ca:
                self.ca = LabCa.generate(urls=urls)
                self.pki.ca = self.ca
                self._ca_cert_path = self.ca.write_root_pem(self._directory / "lab-root-ca.pem")
                if config.ldap is not None:
                    self.ldap = LdapLab(config.ldap, self.ca, self._directory, config.host)
                    await self.ldap.start()
                    urls = self.ldap.urls(urls)
            if config.cert_file is not None and config.key_file is not None:
                credentials = load_host_credentials(config.cert_file, config.key_file)
            else:
                credentials = make_host_credentials(
                    config.cert,
                    computer_name=config.ntlm_computer,
                    ca=self.ca,
                    urls=urls,
                    omit_intermediate=config.omit_intermediate,
                )
            context = self._install(credentials)
            policy = config.policy()
            for index in range(config.count):
                port = config.port + index if config.port else 0
                endpoint = RdpEndpoint(
                    policy,
                    context,
                    host=config.host,
                    port=port,
                    request_timeout_s=config.request_timeout_s,
                    tls_server=self._tls_server,
                )
                self.endpoints.append(endpoint)
                await endpoint.start()
            if config.distinct_certs:
                self._distinct(credentials)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        endpoints, self.endpoints = self.endpoints, []
        for endpoint in endpoints:
            await endpoint.stop()
        if self.pki is not None:
            await self.pki.stop()
        if self.ldap is not None:
            await self.ldap.stop()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    # -- the host certificate ------------------------------------------------------------

    def _install(self, credentials: HostCredentials) -> ssl.SSLContext:
        self._generation += 1
        context, chain_path = self._context(credentials, f"host-{self._generation}")
        self._credentials = credentials
        self.chain_path = chain_path
        self._tls_server = self._make_tls_server(credentials)
        for endpoint in self.endpoints:
            endpoint.ssl_context = context
            endpoint.tls_server = self._tls_server
        return context

    def _make_tls_server(self, credentials: HostCredentials) -> TlsServer | None:
        mode = self.config.tls_mode
        if mode is TlsMode.LEGACY:
            return LegacyTlsServer(credentials.chain, credentials.key)
        if mode in (TlsMode.STAPLED, TlsMode.STAPLED_STALE):
            stale = mode is TlsMode.STAPLED_STALE
            return StaplingTlsServer(
                credentials.chain,
                credentials.key,
                lambda: self.stapled_ocsp(credentials, stale=stale),
                min_version=self.config.tls_min,
                max_version=self.config.tls_max,
            )
        return None

    def stapled_ocsp(self, credentials: HostCredentials, *, stale: bool = False) -> bytes | None:
        """The lab OCSP responder's answer for *credentials*' leaf, as a host staples it;
        *stale*: the answer made two days ago (its nextUpdate, an hour later, long past)."""
        if self.ca is None or len(credentials.chain) < 2:
            return None
        made = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=2 if stale else 0)
        return ocsp_answer(self.ca, ocsp_request(credentials.leaf, credentials.chain[1]), made)

    def _distinct(self, first: HostCredentials) -> None:
        """Give endpoints 2, 3, ... each a self-signed certificate of its own."""
        self.endpoint_sha256 = [first.sha256]
        for index, endpoint in enumerate(self.endpoints[1:], start=2):
            own = windows_self_signed(f"{self.config.ntlm_computer}-{index}", key=first.key)
            endpoint.ssl_context, _ = self._context(own, f"endpoint-{index}")
            self.endpoint_sha256.append(own.sha256)

    def _context(self, credentials: HostCredentials, name: str) -> tuple[ssl.SSLContext, Path]:
        """A server context for *credentials*, kept in a private folder *name*; its chain."""
        assert self._directory is not None
        directory = self._directory / name
        directory.mkdir(mode=0o700)
        chain_path, key_path = credentials.write_pem(directory)
        context = server_context(
            chain_path,
            key_path,
            min_version=self.config.tls_min,
            max_version=self.config.tls_max,
        )
        return context, chain_path

    def set_credentials(self, credentials: HostCredentials) -> None:
        """Serve *credentials* on every endpoint from the next connection on."""
        self._install(credentials)

    def regenerate_certificate(self) -> HostCredentials:
        """Replace the host certificate as Windows does every six months.

        A self-signed certificate gets a successor with the same subject and a new key;
        a CA-issued one is issued again, of the same kind, by the same CA.
        """
        if self.config.distinct_certs:
            raise UsageError("a lab with distinct certificates cannot regenerate them")
        current = self.credentials
        if self.ca is not None and current.ca is not None:
            fresh = make_host_credentials(
                self.config.cert,
                computer_name=self.config.ntlm_computer,
                ca=self.ca,
                urls=self._host_urls(),
            )
        else:
            names = current.leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            name = str(names[0].value) if names else self.config.ntlm_computer
            fresh = windows_self_signed(name)
        self._install(fresh)
        return fresh

    def _host_urls(self) -> PkiUrls | None:
        if self.pki is None:
            return None
        return self.ldap.urls(self.pki.urls()) if self.ldap is not None else self.pki.urls()

    # -- what clients and tests need ------------------------------------------------------

    @property
    def credentials(self) -> HostCredentials:
        if self._credentials is None:
            raise UsageError("the lab is not running")
        return self._credentials

    @property
    def certificate_sha256(self) -> str:
        return self.credentials.sha256

    @property
    def targets(self) -> list[Target]:
        return [endpoint.target for endpoint in self.endpoints]

    @property
    def target(self) -> Target:
        """The first endpoint."""
        return self.targets[0]

    @property
    def pki_url(self) -> str:
        if self.pki is None:
            raise UsageError("the lab is not running")
        return self.pki.base_url

    @property
    def root_list_url(self) -> str:
        if self.pki is None:
            raise UsageError("the lab is not running")
        return self.pki.root_list_url

    @property
    def ca_cert_path(self) -> Path | None:
        """The lab root CA certificate (PEM); ``None`` without a lab CA."""
        return self._ca_cert_path

    def info(self) -> LabInfo:
        """What ``rdptrust lab`` prints first (see :func:`rdptrust.report.lab.lab_document`)."""
        config = self.config
        std = config.standard_security()
        identity = config.ntlm_identity()
        version = identity.version
        return LabInfo(
            rdp=tuple(self.targets),
            pki_url=self.pki_url,
            root_list_url=self.root_list_url,
            ca_cert=self.ca_cert_path,
            certificate=certificate_facts(self.credentials.leaf),
            endpoint_sha256=tuple(self.endpoint_sha256) or None,
            certificate_chain=self.chain_path,
            cert="file" if config.cert_file else str(config.cert),
            offered_protocols=tuple(protocol_names(config.protocols)),
            require=None if config.require is None else config.require.name,
            negotiation_data=not config.no_negotiation,
            hostile=None if config.hostile is None else str(config.hostile),
            latency_ms=config.latency_ms,
            # the legacy server speaks TLS 1.0 alone, whatever the range options say
            tls_range=("TLSv1.0", "TLSv1.0")
            if config.tls_mode is TlsMode.LEGACY
            else (config.tls_min, config.tls_max),
            pki_modes={
                "root_list": str(config.root_list),
                "aia": str(config.aia),
                "crl": str(config.crl),
                "ocsp": str(config.ocsp),
            },
            standard_security=None
            if std is None
            else LabStandardSecurity(
                accepted_methods=tuple(
                    n for m, n in ENCRYPTION_METHOD_NAMES.items() if std.methods & m
                ),
                encryption_level=std.level.name,
            ),
            ntlm=NtlmInfo(
                target_name=identity.domain,
                netbios_computer_name=identity.computer,
                netbios_domain_name=identity.domain,
                dns_computer_name=identity.dns_computer,
                dns_domain_name=identity.dns_domain,
                dns_tree_name=identity.dns_domain,
                os_version=OsVersion(version.major, version.minor, version.build),
            ),
            pid=os.getpid(),
            ldap=None
            if self.ldap is None
            else LabLdap(
                mode=str(self.ldap.mode),
                domain=LAB_DOMAIN if self.ldap.dns_server else None,
                dns_server=self.ldap.dns_server,
            ),
        )
