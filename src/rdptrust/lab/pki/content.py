"""What the lab's PKI responder serves in each mode: root lists, AIA, CRL and OCSP.

Pure functions of the :class:`~rdptrust.lab.certs.LabCa` and the request; the server
that carries them is :mod:`rdptrust.lab.pki.responder`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip
import struct
import urllib.parse
import zlib

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from rdptrust.lab.certs import IssuerName, LabCa
from rdptrust.lab.pki.modes import Purpose, ResponderMode

ROOT_LIST_DIRECTORY = "/msdownload/update/v3/static/trustedr/en/"
ROOT_LIST_PATH = ROOT_LIST_DIRECTORY + "authrootstl.cab"
DISALLOWED_LIST_PATH = ROOT_LIST_DIRECTORY + "disallowedcertstl.cab"
ROOT_SEQUENCE_PATH = ROOT_LIST_DIRECTORY + "authrootseq.txt"
DISALLOWED_SEQUENCE_PATH = ROOT_LIST_DIRECTORY + "disallowedcertseq.txt"
PIN_RULES_PATH = ROOT_LIST_DIRECTORY + "pinrulesstl.cab"
#: The sequence number the lab's sequence files carry (hex, as Windows Update's do).
LAB_SEQUENCE = b"01D9E1A2B3C4D5E6\r\n"
AIA_INTERMEDIATE_PATH = "/aia/intermediate.crt"
AIA_ROOT_PATH = "/aia/root.crt"
CRL_INTERMEDIATE_PATH = "/crl/intermediate.crl"
CRL_ROOT_PATH = "/crl/root.crl"
#: The intermediate's delta CRL (named by host certificates in ``delta`` mode).
CRL_DELTA_PATH = "/crl/intermediate-delta.crl"
OCSP_PATH = "/ocsp"

#: Bytes sent in ``garbage`` mode: no DER (tag 0 is invalid), no cabinet, no text format.
GARBAGE = b"\x00\xff rdptrust lab: not a certificate, CRL, OCSP response or cabinet \xfe\x00\n"
PLACEHOLDER_STL = (
    b"rdptrust lab placeholder for %s: not a signed certificate trust list.\r\n"
    b"It stands in for the Windows Update file so that fetching it can be timed.\r\n"
)

CONTENT_TYPES: dict[str, str] = {
    "root_list": "application/vnd.ms-cab-compressed",
    "aia": "application/pkix-cert",
    "crl": "application/pkix-crl",
    "ocsp": "application/ocsp-response",
}
_AIA_PATHS: dict[str, IssuerName] = {AIA_INTERMEDIATE_PATH: "intermediate", AIA_ROOT_PATH: "root"}
_CRL_PATHS: dict[str, IssuerName] = {CRL_INTERMEDIATE_PATH: "intermediate", CRL_ROOT_PATH: "root"}

#: One answer: status, content type, content.
Answer = tuple[int, str, bytes]


def purpose_of(path: str) -> Purpose | None:
    """Which purpose a request path belongs to; ``None`` for paths the lab does not serve."""
    if path.startswith(ROOT_LIST_DIRECTORY):
        return "root_list"
    if path in _AIA_PATHS:
        return "aia"
    if path in _CRL_PATHS or path == CRL_DELTA_PATH:
        return "crl"
    if path == OCSP_PATH or path.startswith(OCSP_PATH + "/"):
        return "ocsp"
    return None


def answer(
    ca: LabCa | None,
    cabinets: dict[str, bytes],
    purpose: Purpose | None,
    mode: ResponderMode,
    method: str,
    path: str,
    body: bytes,
) -> Answer:
    """The answer to *method* *path* (query included) with *body*, in *mode*.

    *cabinets* maps root list paths to their cabinets (:func:`root_list_cabinets`).
    ``blackhole`` and ``delay`` are the server's to carry out; here they answer as ``ok``.
    """
    not_found = (404, "text/plain", b"not found\n")
    if purpose is None or mode.kind == "404":
        return not_found
    if (mode.kind == "get-only" and method == "POST") or (
        mode.kind == "post-only" and method != "POST"
    ):
        return 405, "text/plain", b"method not allowed\n"
    if mode.kind == "gzip-bomb":
        return 200, CONTENT_TYPES[purpose], gzip_bomb()
    if mode.kind == "huge":
        return 200, CONTENT_TYPES[purpose], huge_body()
    if method not in ("GET", "HEAD") and not (purpose == "ocsp" and method == "POST"):
        return 405, "text/plain", b"method not allowed\n"
    content_type = CONTENT_TYPES[purpose]
    if mode.kind == "garbage":
        return 200, content_type, GARBAGE
    path = path.partition("?")[0]
    if purpose == "root_list":
        cabinet = cabinets.get(path)
        if cabinet and path.endswith(".txt"):
            return 200, "text/plain", cabinet
        return (200, content_type, cabinet) if cabinet else not_found
    if ca is None:
        return not_found
    if purpose == "aia":
        cert = ca.issuer_certificate(_AIA_PATHS[path])
        return 200, content_type, cert.public_bytes(serialization.Encoding.DER)
    if purpose == "crl":
        delta = path == CRL_DELTA_PATH
        crl = ca.crl("intermediate" if delta else _CRL_PATHS[path], delta=delta)
        return 200, content_type, crl.public_bytes(serialization.Encoding.DER)
    if method == "POST":
        data: bytes | None = body
    else:
        encoded = path[len(OCSP_PATH) + 1 :]
        data = _decode_ocsp_get(encoded) if encoded else None
    if not data:
        return 200, content_type, _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    return 200, content_type, ocsp_answer(ca, data)


#: The size of what the ``huge`` mode answers: one byte over Windows'
#: MaxUrlRetrievalByteCount (100 MiB).
HUGE_BYTES = 100 * 1024 * 1024 + 1
_HUGE: list[bytes] = []


def huge_body() -> bytes:
    """HUGE_BYTES zeros (made on first use, then kept: a lab answering ``huge`` holds
    them, and a copy or two while one is sent)."""
    if not _HUGE:
        _HUGE.append(bytes(HUGE_BYTES))
    return _HUGE[0]


#: What the ``gzip-bomb`` mode inflates to, twice decoded (``Content-Encoding: gzip, gzip``).
BOMB_INFLATED_BYTES = 2 * 1024 * 1024 * 1024
_BOMB: list[bytes] = []


#: CRC-32 of BOMB_INFLATED_BYTES zero bytes (the lab's tests recompute it).
BOMB_CRC32 = 0x4DBDF21C


def _gzip_zeros(size: int, crc: int, chunk: int = 4 * 1024 * 1024) -> bytes:
    """RFC 1952 gzip of *size* zero bytes (a multiple of *chunk*) whose CRC-32 is *crc*,
    without compressing them all: after a full flush deflate starts afresh, so each
    chunk of zeros packs to the same bytes, which are repeated."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = packer.compress(bytes(chunk)) + packer.flush(zlib.Z_FULL_FLUSH)
    tail = packer.flush(zlib.Z_FINISH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return header + block * (size // chunk) + tail + trailer


def gzip_bomb() -> bytes:
    """2 GiB of zeros, gzipped twice: a few KiB on the wire (made once, then kept)."""
    if not _BOMB:
        _BOMB.append(gzip.compress(_gzip_zeros(BOMB_INFLATED_BYTES, BOMB_CRC32), 9))
    return _BOMB[0]


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


def root_list_cabinets() -> dict[str, bytes]:
    """The trust list paths and their files: the sequence files, and the cabinets each
    holding a placeholder list."""
    return {
        ROOT_SEQUENCE_PATH: LAB_SEQUENCE,
        DISALLOWED_SEQUENCE_PATH: LAB_SEQUENCE,
        PIN_RULES_PATH: build_cabinet("pinrules.stl", PLACEHOLDER_STL % b"pinrules.stl"),
        ROOT_LIST_PATH: build_cabinet("authroot.stl", PLACEHOLDER_STL % b"authroot.stl"),
        DISALLOWED_LIST_PATH: build_cabinet(
            "disallowedcert.stl", PLACEHOLDER_STL % b"disallowedcert.stl"
        ),
    }


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
