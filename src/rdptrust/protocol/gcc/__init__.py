"""GCC Conference Create and the RDP settings blocks (MS-RDPBCGR 2.2.1.3, 2.2.1.4).

Standard RDP Security is negotiated here: the client lists the encryption methods it
accepts in CS_SECURITY, and the server answers in SC_SECURITY with the method it chose,
its encryption level, a server random and its server certificate (a proprietary RSA
blob or an X.509 chain). SC_CORE carries the server's RDP version.

One module per layer, innermost first:

- :mod:`~rdptrust.protocol.gcc.certificate`: SERVER_CERTIFICATE, proprietary or X.509;
- :mod:`~rdptrust.protocol.gcc.blocks`: the client and server settings blocks;
- :mod:`~rdptrust.protocol.gcc.conference`: GCC Conference Create Request/Response;
- :mod:`~rdptrust.protocol.gcc.connect`: the whole PDUs in TPKT, X.224 Data and MCS.

Sans-I/O: builders return bytes, parsers take bytes and return ``(value, consumed)`` or
``None`` when more data is needed; bad input raises
:class:`~rdptrust.errors.RemoteProtocolError` with the offset in the packet.
"""

from __future__ import annotations

from rdptrust.protocol.gcc.blocks import (
    ENCRYPTION_METHOD_NAMES,
    IO_CHANNEL_ID,
    MAX_CHANNELS,
    RDP_VERSIONS,
    ChannelDef,
    ClientCoreData,
    ClientNetworkData,
    ClientSecurityData,
    EncryptionLevel,
    EncryptionMethod,
    ServerCoreData,
    ServerNetworkData,
    ServerSecurityData,
    UserDataBlock,
    UserDataType,
    encryption_level_name,
    parse_user_data_blocks,
    rdp_version_name,
)
from rdptrust.protocol.gcc.certificate import (
    MAX_X509_CERTIFICATES,
    CertificateChainVersion,
    ProprietaryCertificate,
    ServerCertificate,
    parse_server_certificate,
)
from rdptrust.protocol.gcc.conference import (
    DEFAULT_NODE_ID,
    WINDOWS_CONNECT_PDU_LENGTH,
    ConferenceCreateRequest,
    ConferenceCreateResponse,
    parse_conference_create_request,
    parse_conference_create_response,
    per_length,
)
from rdptrust.protocol.gcc.connect import (
    MCS_OFFSET,
    ClientConnectInitial,
    ServerConnectResponse,
    parse_client_connect_initial,
    parse_server_connect_response,
)

__all__ = [
    "DEFAULT_NODE_ID",
    "ENCRYPTION_METHOD_NAMES",
    "IO_CHANNEL_ID",
    "MAX_CHANNELS",
    "MAX_X509_CERTIFICATES",
    "MCS_OFFSET",
    "RDP_VERSIONS",
    "WINDOWS_CONNECT_PDU_LENGTH",
    "CertificateChainVersion",
    "ChannelDef",
    "ClientConnectInitial",
    "ClientCoreData",
    "ClientNetworkData",
    "ClientSecurityData",
    "ConferenceCreateRequest",
    "ConferenceCreateResponse",
    "EncryptionLevel",
    "EncryptionMethod",
    "ProprietaryCertificate",
    "ServerCertificate",
    "ServerConnectResponse",
    "ServerCoreData",
    "ServerNetworkData",
    "ServerSecurityData",
    "UserDataBlock",
    "UserDataType",
    "encryption_level_name",
    "parse_client_connect_initial",
    "parse_conference_create_request",
    "parse_conference_create_response",
    "parse_server_certificate",
    "parse_server_connect_response",
    "parse_user_data_blocks",
    "per_length",
    "rdp_version_name",
]
