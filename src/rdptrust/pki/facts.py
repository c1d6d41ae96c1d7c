"""Certificate facts: what one X.509 certificate says, in plain values.

:func:`load_certificate` turns DER or PEM bytes into a ``cryptography`` certificate;
:func:`certificate_facts` reads everything an RDP admin looks at from it. Both raise
only :class:`~rdptrust.errors.PkiError`, whatever the bytes are: a host can send
anything, and one odd certificate must not sink a probe. An extension block that
cannot be decoded does not fail the facts either; its fields stay empty and
``parse_warnings`` says what could not be read.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Iterable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import (
    dsa,
    ec,
    ed448,
    ed25519,
    rsa,
    x448,
    x25519,
)
from cryptography.x509.oid import (
    ExtendedKeyUsageOID,
    PublicKeyAlgorithmOID,
)

from rdptrust.errors import PkiError
from rdptrust.model.certificate import UNDECODABLE_NAME, CertificateFacts
from rdptrust.pki.names import general_name_text, name_common_name, name_text, printable_text
from rdptrust.pki.quiet import quiet_parsing
from rdptrust.pki.signatures import verify_signature
from rdptrust.pki.tbs import TbsParts, certificate_der
from rdptrust.pki.tbs import tbs_parts as _tbs_parts

#: Remote Desktop Authentication, the EKU Windows issues RDP host certificates with.
RDP_AUTHENTICATION_OID = "1.3.6.1.4.1.311.54.1.2"
SERVER_AUTH_OID = ExtendedKeyUsageOID.SERVER_AUTH.dotted_string
ANY_EKU_OID = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string

#: Names shown for extended key usages (others are shown as their dotted OID).
EKU_NAMES: dict[str, str] = {
    SERVER_AUTH_OID: "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
    ANY_EKU_OID: "anyExtendedKeyUsage",
    RDP_AUTHENTICATION_OID: "Remote Desktop Authentication",
    "1.3.6.1.4.1.311.20.2.2": "smartcardLogon",
    "1.3.6.1.5.2.3.5": "KDC Authentication",
    "1.3.6.1.4.1.311.10.3.4": "Encrypting File System",
}

# Hash names for signature algorithms cryptography cannot map to a hash object.
_SIGNATURE_HASH_BY_OID: dict[str, str] = {
    "1.2.840.113549.1.1.2": "md2",
    "1.2.840.113549.1.1.3": "md4",
    "1.2.840.113549.1.1.4": "md5",
    "1.2.840.113549.1.1.5": "sha1",
    "1.3.14.3.2.29": "sha1",
    "1.2.840.10040.4.3": "sha1",
    "1.2.840.10045.4.1": "sha1",
}

_PEM_MARKER = b"-----BEGIN"

#: Certificates whose decoded names, DER and key hash are remembered (a judgement asks
#: for the same certificate's subject and issuer several times; each ask decodes anew).
#: One judgement needs its own chain's; more only holds certificates of hosts already
#: judged in memory (about 10 KiB each).
NAME_CACHE_SIZE = 256


def load_certificate(data: bytes) -> x509.Certificate:
    """Load one certificate from DER or PEM bytes (the first one of a PEM bundle)."""
    if not data:
        raise PkiError("empty certificate data")
    if _PEM_MARKER in data:
        certificates = load_certificates(data)
        return certificates[0]
    try:
        with quiet_parsing():
            return x509.load_der_x509_certificate(bytes(data))
    except Exception as exc:  # any decoder failure is the same thing to a user
        raise PkiError(f"not a DER or PEM X.509 certificate ({_reason(exc)})") from exc


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Load every certificate of a PEM bundle, or the one certificate of DER bytes."""
    if _PEM_MARKER not in data:
        return [load_certificate(data)]
    try:
        with quiet_parsing():
            certificates = x509.load_pem_x509_certificates(bytes(data))
    except Exception as exc:
        raise PkiError(f"not a PEM certificate bundle ({_reason(exc)})") from exc
    if not certificates:
        raise PkiError("the PEM data holds no certificate")
    return certificates


def parse_issuers(body: bytes) -> list[x509.Certificate]:
    """The certificates of an AIA caIssuers answer (DER, PEM or a PKCS #7 bundle);
    empty when it holds none."""
    try:
        return load_certificates(body)
    except PkiError:
        pass
    try:
        # imported when an answer is no certificate: it loads the email package
        from cryptography.hazmat.primitives.serialization import pkcs7

        return list(pkcs7.load_der_pkcs7_certificates(body))
    except (ValueError, x509.InvalidVersion):
        return []


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint of the DER certificate, lowercase hex without separators."""
    return hashlib.sha256(_encoded(cert)).hexdigest()


def fingerprint_sha1(cert: x509.Certificate) -> str:
    """SHA-1 thumbprint (what Windows calls the certificate hash), lowercase hex."""
    return hashlib.sha1(_encoded(cert)).hexdigest()


@functools.lru_cache(maxsize=NAME_CACHE_SIZE)
def public_key_sha256(cert: x509.Certificate) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex; works for any key type."""
    parts = _tbs_parts(cert)
    if isinstance(parts, Exception):
        raise PkiError(f"cannot read the certificate's public key ({_reason(parts)})")
    return hashlib.sha256(parts.spki).hexdigest()


def is_self_signed(cert: x509.Certificate) -> bool:
    """True when the certificate names itself as issuer and its own key verifies it."""
    return is_signed_by(cert, cert)


def is_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when *issuer*'s subject is *cert*'s issuer and *issuer*'s key verifies *cert*.

    SHA-1 and MD5 signatures, which cryptography's own check refuses, are verified
    too: old Windows hosts still present them, and judging them needs to know whether
    they verify. The answer for a pair is remembered (:data:`SIGNATURE_CACHE_SIZE`
    pairs): one judgement asks it several times, and a signature check is the dearest
    step of judging a host.
    """
    return _signed_by(cert, issuer)


#: Certificate pairs whose signature check :func:`is_signed_by` remembers.
SIGNATURE_CACHE_SIZE = 256


@functools.lru_cache(maxsize=SIGNATURE_CACHE_SIZE)
def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    # Certificates hash and compare by their DER: the same pair parsed twice is one entry.
    try:
        with quiet_parsing():
            if not _names_equal(cert, issuer):
                return False
            verified = verify_signature(cert, issuer)
            if verified is not None:
                return verified
            try:
                cert.verify_directly_issued_by(issuer)
            except InvalidSignature:
                return False
            return True
    except Exception:
        return False


def certificate_facts(
    cert: x509.Certificate, *, now: dt.datetime | None = None
) -> CertificateFacts:
    """Read the facts of *cert*; ``days_left`` counts whole days from *now* (default: now).

    Undecodable names show as :data:`UNDECODABLE_NAME` and undecodable extensions as
    empty values; ``parse_warnings`` then says what could not be read.
    """
    try:
        days_left = (cert.not_valid_after_utc - as_utc(now)).days
    except Exception as exc:
        raise PkiError(f"cannot read the certificate ({_reason(exc)})") from exc
    return _read_facts(cert, days_left)


#: Certificates whose facts :func:`certificate_facts` remembers (one judgement reads the
#: same certificate's facts several times: chain, problems, pin, inventory entry).
FACTS_CACHE_SIZE = 256


@functools.lru_cache(maxsize=FACTS_CACHE_SIZE)
def _read_facts(cert: x509.Certificate, days_left: int) -> CertificateFacts:
    try:
        with quiet_parsing():
            return _facts(cert, days_left)
    except PkiError:
        raise
    except Exception as exc:
        raise PkiError(f"cannot read the certificate ({_reason(exc)})") from exc


@functools.lru_cache(maxsize=NAME_CACHE_SIZE)
def subject_name(cert: x509.Certificate) -> x509.Name | None:
    """The certificate's subject, or None when it cannot be decoded."""
    try:
        with quiet_parsing():
            return cert.subject
    except Exception:
        return None


@functools.lru_cache(maxsize=NAME_CACHE_SIZE)
def issuer_name(cert: x509.Certificate) -> x509.Name | None:
    """The certificate's issuer name, or None when it cannot be decoded."""
    try:
        with quiet_parsing():
            return cert.issuer
    except Exception:
        return None


def _facts(cert: x509.Certificate, days_left: int) -> CertificateFacts:
    warnings_: list[str] = []
    subject = subject_name(cert)
    # a self-issued certificate's issuer is its subject, byte for byte: decoded once
    self_issued = _raw_self_issued(cert)
    issuer = subject if self_issued and subject is not None else issuer_name(cert)
    if subject is None:
        warnings_.append("the subject name could not be decoded")
    if issuer is None:
        warnings_.append("the issuer name could not be decoded")
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    key_type, key_bits = _key_description(cert)
    try:
        extensions: _Extensions | None = _by_type(cert.extensions)
    except Exception as exc:
        extensions = None
        warnings_.append(f"extensions could not be decoded ({_reason(exc)})")
    san = _san(extensions)
    eku = _eku(extensions)
    crl_urls = _crl_urls(extensions)
    ocsp_urls, ca_issuers_urls = _aia_urls(extensions)
    subject_text = name_text(subject) if subject is not None else UNDECODABLE_NAME
    if issuer is None:
        issuer_text = UNDECODABLE_NAME
    else:
        issuer_text = subject_text if issuer is subject else name_text(issuer)
    return CertificateFacts(
        subject=subject_text,
        issuer=issuer_text,
        common_name=name_common_name(subject) if subject is not None else None,
        self_signed=is_self_signed(cert),
        serial=_serial_hex(cert.serial_number),
        not_before=not_before,
        not_after=not_after,
        days_left=days_left,
        sha1=fingerprint_sha1(cert),
        sha256=fingerprint_sha256(cert),
        san=san,
        eku=eku,
        eku_names=tuple(EKU_NAMES.get(oid, oid) for oid in eku),
        key_type=key_type,
        key_bits=key_bits,
        signature_algorithm=_signature_algorithm(cert),
        signature_hash=signature_hash(cert),
        crl_urls=crl_urls,
        ocsp_urls=ocsp_urls,
        ca_issuers_urls=ca_issuers_urls,
        is_ca=_is_ca(extensions),
        public_key_sha256=public_key_sha256(cert),
        parse_warnings=tuple(warnings_),
    )


def signature_hash(cert: x509.Certificate) -> str | None:
    """Name of the hash the issuer signed *cert* with (``sha256``, ``sha1``, ``md5``...)."""
    try:
        with quiet_parsing():
            algorithm = cert.signature_hash_algorithm
    except Exception:
        return _SIGNATURE_HASH_BY_OID.get(cert.signature_algorithm_oid.dotted_string)
    return algorithm.name if algorithm is not None else None


def eku_oids(cert: x509.Certificate) -> tuple[str, ...] | None:
    """Dotted EKU OIDs; ``()`` when there is no EKU extension, None when undecodable."""
    try:
        with quiet_parsing():
            extensions = _by_type(cert.extensions)
    except Exception:
        return None
    return _eku(extensions)


def subject_alt_names(cert: x509.Certificate) -> tuple[str, ...] | None:
    """Typed SAN entries (``DNS:name``, ``IP:addr``...); None when undecodable."""
    try:
        with quiet_parsing():
            extensions = _by_type(cert.extensions)
    except Exception:
        return None
    return _san(extensions)


def common_name(cert: x509.Certificate) -> str | None:
    """The subject's (last) common name, or None when there is none or it is unreadable."""
    try:
        return name_common_name(cert.subject)
    except Exception:
        return None


def _key_description(cert: x509.Certificate) -> tuple[str, int | None]:
    try:
        key = cert.public_key()
    except Exception:
        oid = cert.public_key_algorithm_oid
        name = getattr(oid, "_name", None)
        if not name or name == "Unknown OID":
            name = oid.dotted_string
        return str(name), None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, x25519.X25519PublicKey):
        return "X25519", 256
    if isinstance(key, x448.X448PublicKey):
        return "X448", 448
    if cert.public_key_algorithm_oid == PublicKeyAlgorithmOID.RSASSA_PSS:
        return "RSA-PSS", None
    return type(key).__name__, None


def _signature_algorithm(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    name = getattr(oid, "_name", None)
    if not name or name == "Unknown OID":
        return oid.dotted_string
    return str(name)


def _serial_hex(serial: int) -> str:
    if serial < 0:
        # Negative serials break RFC 5280 but occur; show the sign, not two's complement.
        return "-" + _serial_hex(-serial)
    text = format(serial, "x")
    return text if len(text) % 2 == 0 else "0" + text


#: A certificate's extension values by their type (the first of each).
_Extensions = dict[type, x509.ExtensionType]


def _by_type(extensions: x509.Extensions) -> _Extensions:
    """The values of *extensions* by type, read in one pass (what
    ``get_extension_for_class`` finds for each of them, without one pass each)."""
    values: _Extensions = {}
    for extension in extensions:
        values.setdefault(type(extension.value), extension.value)
    return values


def _extension(extensions: _Extensions | None, kind: type[x509.ExtensionType]) -> object:
    if extensions is None:
        return None
    return extensions.get(kind)


def _san(extensions: _Extensions | None) -> tuple[str, ...]:
    value = _extension(extensions, x509.SubjectAlternativeName)
    if not isinstance(value, x509.SubjectAlternativeName):
        return ()
    return tuple(general_name_text(name) for name in value)


def _eku(extensions: _Extensions | None) -> tuple[str, ...]:
    value = _extension(extensions, x509.ExtendedKeyUsage)
    if not isinstance(value, x509.ExtendedKeyUsage):
        return ()
    return tuple(oid.dotted_string for oid in value)


def _uris(names: Iterable[x509.GeneralName] | None) -> list[str]:
    if names is None:
        return []
    return [printable_text(n.value) for n in names if isinstance(n, x509.UniformResourceIdentifier)]


def _crl_urls(extensions: _Extensions | None) -> tuple[str, ...]:
    value = _extension(extensions, x509.CRLDistributionPoints)
    if not isinstance(value, x509.CRLDistributionPoints):
        return ()
    urls: list[str] = []
    for point in value:
        urls.extend(u for u in _uris(point.full_name) if u not in urls)
    return tuple(urls)


def _aia_urls(extensions: _Extensions | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    value = _extension(extensions, x509.AuthorityInformationAccess)
    if not isinstance(value, x509.AuthorityInformationAccess):
        return (), ()
    ocsp: list[str] = []
    issuers: list[str] = []
    for description in value:
        location = description.access_location
        if not isinstance(location, x509.UniformResourceIdentifier):
            continue
        if description.access_method == x509.oid.AuthorityInformationAccessOID.OCSP:
            ocsp.append(location.value)
        elif description.access_method == x509.oid.AuthorityInformationAccessOID.CA_ISSUERS:
            issuers.append(location.value)
    return tuple(ocsp), tuple(issuers)


def _is_ca(extensions: _Extensions | None) -> bool:
    value = _extension(extensions, x509.BasicConstraints)
    return isinstance(value, x509.BasicConstraints) and value.ca


def _encoded(cert: x509.Certificate) -> bytes:
    try:
        return certificate_der(cert)
    except Exception as exc:
        raise PkiError(f"cannot encode the certificate ({_reason(exc)})") from exc


def _raw_self_issued(cert: x509.Certificate) -> bool:
    """True when *cert*'s issuer and subject are encoded alike (then they are equal)."""
    parts = _tbs_parts(cert)
    return isinstance(parts, TbsParts) and parts.issuer == parts.subject


def _names_equal(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when *issuer*'s subject is *cert*'s issuer name; False when a name cannot be
    decoded.

    Names encoded alike are equal (when they decode at all); names encoded differently
    are compared decoded, as ``cryptography`` compares them.
    """
    ours, theirs = _tbs_parts(cert), _tbs_parts(issuer)
    if isinstance(ours, TbsParts) and isinstance(theirs, TbsParts):
        if ours.issuer == theirs.subject:
            return subject_name(issuer) is not None
    named, subject = issuer_name(cert), subject_name(issuer)
    return named is not None and subject is not None and named == subject


def is_self_issued(cert: x509.Certificate) -> bool:
    """True when *cert* names itself as issuer (its signature is not checked; False
    when a name cannot be decoded)."""
    return _names_equal(cert, cert)


def as_utc(now: dt.datetime | None) -> dt.datetime:
    """*now* in UTC (naive values are taken as UTC); the current time when None."""
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=dt.UTC)
    return now.astimezone(dt.UTC)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text or type(exc).__name__
