"""The lab's answer to MCS Connect-Initial: Standard RDP Security as a Windows host gives it.

:class:`StandardSecurityPolicy` says which encryption methods the lab supports, its
encryption level, its RDP version and whether its server certificate is a proprietary
RSA blob or an X.509 chain. :func:`connect_response_for` picks the method the way
MS-RDPBCGR 5.3.2 describes:

=====================  ================================================================
level                  method chosen from those the client offers and the lab supports
=====================  ================================================================
NONE                   none: method and level 0, no server random, no certificate
LOW, CLIENT_COMPATIBLE the strongest: 128-bit, then 56-bit, then 40-bit, then FIPS
HIGH                   128-bit only
FIPS                   FIPS only
=====================  ================================================================

When nothing fits the lab drops the connection without a Connect-Response. Over TLS
(Enhanced RDP Security, the client asked for SSL or CredSSP) the answer carries method
and level 0, as Windows sends then.

The proprietary certificate carries a fresh RSA key but is not signed with the
Terminal Services key that Windows uses (its signature blob is zeros): nothing in the
lab goes past the Connect-Response, so no client ever checks it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from rdptrust.errors import UsageError
from rdptrust.protocol.gcc import (
    ENCRYPTION_METHOD_NAMES,
    IO_CHANNEL_ID,
    WINDOWS_CONNECT_PDU_LENGTH,
    ClientConnectInitial,
    EncryptionLevel,
    EncryptionMethod,
    ProprietaryCertificate,
    ServerCertificate,
    ServerConnectResponse,
    ServerCoreData,
    ServerNetworkData,
    ServerSecurityData,
)

#: The order a Windows host prefers methods in when the level lets it choose.
_PREFERENCE = (
    EncryptionMethod.BIT_128,
    EncryptionMethod.BIT_56,
    EncryptionMethod.BIT_40,
    EncryptionMethod.FIPS,
)
_ALL_METHODS = (
    EncryptionMethod.BIT_40
    | EncryptionMethod.BIT_56
    | EncryptionMethod.BIT_128
    | EncryptionMethod.FIPS
)
#: Windows Server 2022 sends this SC_CORE version (RDP 10.7).
DEFAULT_RDP_VERSION = 0x0008000C
_SERVER_RANDOM_LENGTH = 32
#: A proprietary signature is as long as the Terminal Services key's modulus + 8 (5.3.3.1).
_SIGNATURE_LENGTH = 72


def parse_methods(text: str) -> EncryptionMethod:
    """``40BIT,56BIT,128BIT,FIPS`` (any subset; ``40``, ``56``, ``128`` also work)."""
    by_name = {name: method for method, name in ENCRYPTION_METHOD_NAMES.items()}
    result = EncryptionMethod.NONE
    for item in text.split(","):
        name = item.strip().upper()
        if not name:
            continue
        name = name if name == "FIPS" or name.endswith("BIT") else f"{name}BIT"
        if name not in by_name:
            raise UsageError(f"unknown encryption method {item!r}; use 40BIT, 56BIT, 128BIT, FIPS")
        result |= by_name[name]
    if not result:
        raise UsageError("give at least one encryption method, e.g. 128BIT")
    return result


def parse_level(text: str) -> EncryptionLevel:
    """``none``, ``low``, ``client-compatible``, ``high`` or ``fips``."""
    name = text.strip().upper().replace("-", "_")
    try:
        return EncryptionLevel[name]
    except KeyError:
        raise UsageError(
            f"unknown encryption level {text!r}; use none, low, client-compatible, high, fips"
        ) from None


@dataclass(frozen=True)
class StandardSecurityPolicy:
    """How the lab answers Standard RDP Security.

    ``x509_chain`` (DER, the host's certificate last as MS-RDPELE orders it) is sent
    when ``certificate`` is ``x509``; ``temporary`` sets the certificate's t bit.
    """

    methods: EncryptionMethod = EncryptionMethod.BIT_128 | EncryptionMethod.FIPS
    level: EncryptionLevel = EncryptionLevel.CLIENT_COMPATIBLE
    rdp_version: int = DEFAULT_RDP_VERSION
    certificate: str = "proprietary"
    x509_chain: tuple[bytes, ...] = ()
    temporary: bool = False

    def __post_init__(self) -> None:
        if not self.methods or self.methods & ~_ALL_METHODS:
            raise UsageError(
                "the lab's encryption methods must be some of 40BIT, 56BIT, 128BIT, FIPS"
            )
        if self.certificate not in ("proprietary", "x509"):
            raise UsageError(f"certificate must be proprietary or x509, not {self.certificate!r}")
        if self.certificate == "x509" and not self.x509_chain:
            raise UsageError("an X.509 server certificate needs a chain to send")
        if self.level == EncryptionLevel.HIGH and not self.methods & EncryptionMethod.BIT_128:
            raise UsageError("encryption level HIGH needs the 128BIT method")
        if self.level == EncryptionLevel.FIPS and not self.methods & EncryptionMethod.FIPS:
            raise UsageError("encryption level FIPS needs the FIPS method")

    def choose(self, offered: int) -> EncryptionMethod | None:
        """The method for a client offering *offered*; ``None`` when nothing fits."""
        if self.level == EncryptionLevel.NONE:
            return EncryptionMethod.NONE
        common = EncryptionMethod(offered & int(self.methods))
        if self.level == EncryptionLevel.HIGH:
            allowed: tuple[EncryptionMethod, ...] = (EncryptionMethod.BIT_128,)
        elif self.level == EncryptionLevel.FIPS:
            allowed = (EncryptionMethod.FIPS,)
        else:
            allowed = _PREFERENCE
        return next((m for m in allowed if common & m), None)

    def server_certificate(self) -> ServerCertificate:
        if self.certificate == "x509":
            return ServerCertificate(x509_chain=self.x509_chain, temporary=self.temporary)
        public = _proprietary_key().public_key().public_numbers()
        blob = ProprietaryCertificate.from_rsa(public.e, public.n, bytes(_SIGNATURE_LENGTH))
        return ServerCertificate(proprietary=blob, temporary=self.temporary)


@functools.cache
def _proprietary_key() -> rsa.RSAPrivateKey:
    # One key per process, like the key a Windows host keeps; only its public half is used.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def connect_response_for(
    initial: ClientConnectInitial,
    policy: StandardSecurityPolicy,
    selected_protocol: int,
) -> ServerConnectResponse | None:
    """The Connect-Response for *initial*; ``None`` means drop the connection.

    *selected_protocol* is what the X.224 exchange selected: 0 (Standard RDP Security)
    gets the policy's method and level, anything else (TLS under way) method and level 0.
    """
    conference = initial.conference
    channels = conference.network.channels if conference.network else ()
    network = ServerNetworkData(
        IO_CHANNEL_ID, tuple(IO_CHANNEL_ID + 1 + i for i in range(len(channels)))
    )
    core = ServerCoreData(policy.rdp_version, selected_protocol, 0)
    if selected_protocol:
        return ServerConnectResponse.build(
            core, ServerSecurityData(0, 0), network, connect_pdu_length=WINDOWS_CONNECT_PDU_LENGTH
        )
    client = conference.security
    offered = 0
    if client is not None:
        # French-locale clients put their methods in extEncryptionMethods instead.
        offered = int(client.encryption_methods) or client.ext_encryption_methods
    method = policy.choose(offered)
    if method is None:
        return None
    if method == EncryptionMethod.NONE:
        security = ServerSecurityData(0, 0)
    else:
        security = ServerSecurityData(
            int(method),
            int(policy.level),
            os.urandom(_SERVER_RANDOM_LENGTH),
            policy.server_certificate(),
        )
    return ServerConnectResponse.build(
        core, security, network, connect_pdu_length=WINDOWS_CONNECT_PDU_LENGTH
    )
