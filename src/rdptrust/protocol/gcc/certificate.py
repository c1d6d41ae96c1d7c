"""SERVER_CERTIFICATE: the proprietary RSA blob or X.509 chain in SC_SECURITY
(MS-RDPBCGR 2.2.1.4.3.1, MS-RDPELE 2.2.1.4.2).

:func:`parse_server_certificate` raises :class:`~rdptrust.errors.RemoteProtocolError`
with the offset in the packet (``base`` is the certificate's offset).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from rdptrust.errors import LocalProtocolError
from rdptrust.protocol.reader import LittleEndianReader


class CertificateChainVersion(IntEnum):
    """dwVersion of SERVER_CERTIFICATE without the temporary bit (MS-RDPBCGR 2.2.1.4.3.1)."""

    PROPRIETARY = 1
    X509 = 2


_CERT_TEMPORARY = 0x80000000
_RSA1_MAGIC = 0x31415352
_BB_RSA_KEY_BLOB = 0x0006
_BB_RSA_SIGNATURE_BLOB = 0x0008
_SIGNATURE_ALG_RSA = 1
_KEY_EXCHANGE_ALG_RSA = 1
#: More certificates than this in one chain is not an RDP server (MS-RDPELE 2.2.1.4.2).
MAX_X509_CERTIFICATES = 16


@dataclass(frozen=True)
class ProprietaryCertificate:
    """PROPRIETARYSERVERCERTIFICATE (MS-RDPBCGR 2.2.1.4.3.1.1) with its RSA_PUBLIC_KEY.

    ``modulus`` is little-endian as on the wire, including the 8 zero bytes of padding
    that ``keylen`` counts.
    """

    public_exponent: int
    modulus: bytes = field(repr=False)
    bit_length: int
    signature: bytes = field(repr=False)
    data_length: int | None = None
    sig_alg_id: int = _SIGNATURE_ALG_RSA
    key_alg_id: int = _KEY_EXCHANGE_ALG_RSA

    @classmethod
    def from_rsa(
        cls, public_exponent: int, modulus: int, signature: bytes
    ) -> ProprietaryCertificate:
        bits = ((modulus.bit_length() + 7) // 8) * 8
        raw = modulus.to_bytes(bits // 8, "little") + bytes(8)
        return cls(public_exponent, raw, bits, signature, bits // 8 - 1)

    @property
    def key_bits(self) -> int:
        return self.bit_length

    @property
    def modulus_int(self) -> int:
        return int.from_bytes(self.modulus, "little")

    def to_bytes(self) -> bytes:
        datalen = self.bit_length // 8 - 1 if self.data_length is None else self.data_length
        key = (
            struct.pack(
                "<IIIII",
                _RSA1_MAGIC,
                len(self.modulus),
                self.bit_length,
                datalen,
                self.public_exponent,
            )
            + self.modulus
        )
        return (
            struct.pack("<IIHH", self.sig_alg_id, self.key_alg_id, _BB_RSA_KEY_BLOB, len(key))
            + key
            + struct.pack("<HH", _BB_RSA_SIGNATURE_BLOB, len(self.signature))
            + self.signature
        )


@dataclass(frozen=True)
class ServerCertificate:
    """SERVER_CERTIFICATE (MS-RDPBCGR 2.2.1.4.3.1).

    Exactly one of ``proprietary`` (chain version 1) and ``x509_chain`` (version 2, DER
    certificates in the order sent: MS-RDPELE puts the server's own certificate last)
    is set. ``temporary`` is the t bit: the certificate is not permanent.
    """

    proprietary: ProprietaryCertificate | None = None
    x509_chain: tuple[bytes, ...] = ()
    temporary: bool = False

    def __post_init__(self) -> None:
        if (self.proprietary is None) == (not self.x509_chain):
            raise LocalProtocolError("a server certificate is proprietary or an X.509 chain")
        if len(self.x509_chain) > MAX_X509_CERTIFICATES:
            raise LocalProtocolError(f"at most {MAX_X509_CERTIFICATES} certificates")

    @property
    def chain_version(self) -> CertificateChainVersion:
        if self.proprietary is not None:
            return CertificateChainVersion.PROPRIETARY
        return CertificateChainVersion.X509

    @property
    def type_name(self) -> str:
        """``proprietary`` or ``x509``."""
        return "proprietary" if self.proprietary is not None else "x509"

    def to_bytes(self) -> bytes:
        version = int(self.chain_version) | (_CERT_TEMPORARY if self.temporary else 0)
        out = struct.pack("<I", version)
        if self.proprietary is not None:
            return out + self.proprietary.to_bytes()
        out += struct.pack("<I", len(self.x509_chain))
        for der in self.x509_chain:
            out += struct.pack("<I", len(der)) + der
        # MS-RDPELE 2.2.1.4.2: 8 + 4 * NumCertBlobs bytes of padding.
        return out + bytes(8 + 4 * len(self.x509_chain))


def parse_server_certificate(data: bytes, base: int = 0) -> ServerCertificate:
    """Parse SERVER_CERTIFICATE; *base* is its offset in the packet."""
    reader = LittleEndianReader(data, base, "server certificate")
    version = reader.u32("dwVersion")
    temporary = bool(version & _CERT_TEMPORARY)
    chain_version = version & ~_CERT_TEMPORARY
    if chain_version == CertificateChainVersion.PROPRIETARY:
        sig_alg = reader.u32("dwSigAlgId")
        key_alg = reader.u32("dwKeyAlgId")
        if reader.u16("wPublicKeyBlobType") != _BB_RSA_KEY_BLOB:
            raise reader.error("wPublicKeyBlobType is not BB_RSA_KEY_BLOB", reader.pos - 2)
        blob_len = reader.u16("wPublicKeyBlobLen")
        key = LittleEndianReader(
            reader.take(blob_len, "PublicKeyBlob"), base + reader.pos - blob_len, "RSA_PUBLIC_KEY"
        )
        if key.u32("magic") != _RSA1_MAGIC:
            raise key.error("magic is not RSA1", 0)
        keylen = key.u32("keylen")
        bitlen = key.u32("bitlen")
        datalen = key.u32("datalen")
        exponent = key.u32("pubExp")
        modulus = key.take(keylen, "modulus")
        key.end()
        if bitlen == 0 or bitlen > 8 * keylen:
            raise key.error(f"bitlen {bitlen} does not fit keylen {keylen}", 8)
        if reader.u16("wSignatureBlobType") != _BB_RSA_SIGNATURE_BLOB:
            raise reader.error("wSignatureBlobType is not BB_RSA_SIGNATURE_BLOB", reader.pos - 2)
        sig_len = reader.u16("wSignatureBlobLen")
        signature = reader.take(sig_len, "SignatureBlob")
        reader.end()
        cert = ProprietaryCertificate(
            exponent, modulus, bitlen, signature, datalen, sig_alg, key_alg
        )
        return ServerCertificate(proprietary=cert, temporary=temporary)
    if chain_version == CertificateChainVersion.X509:
        count = reader.u32("NumCertBlobs")
        if not 0 < count <= MAX_X509_CERTIFICATES:
            raise reader.error(f"NumCertBlobs {count} is not 1-{MAX_X509_CERTIFICATES}", 4)
        chain = []
        for _ in range(count):
            size = reader.u32("cbCert")
            chain.append(reader.take(size, "abCert"))
        padding = reader.take(reader.remaining, "Padding")
        if any(padding):
            raise reader.error("non-zero padding after the certificates", reader.pos - len(padding))
        return ServerCertificate(x509_chain=tuple(chain), temporary=temporary)
    raise reader.error(f"unknown certificate chain version {chain_version}", 0)
