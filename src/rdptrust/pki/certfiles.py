"""Reading certificate files: system trust stores, bundles and hashed directories.

The system store is read once per file (a hash link and its file are one file) and
once per PEM block (distributions ship the same bundle under several names); the
names of every path read stay in the sources all the same.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from rdptrust.errors import PkiError
from rdptrust.pki.facts import load_certificate

_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
_PEM_END = b"-----END CERTIFICATE-----"


def pem_blocks(data: bytes) -> list[bytes]:
    """The base64 bodies of the certificate blocks in *data*, in order (a scan for the
    markers: several times faster than a regular expression on a system bundle)."""
    blocks: list[bytes] = []
    pos = 0
    while (begin := data.find(_PEM_BEGIN, pos)) >= 0:
        start = begin + len(_PEM_BEGIN)
        end = data.find(_PEM_END, start)
        if end < 0:
            break
        blocks.append(data[start:end].strip())
        pos = end + len(_PEM_END)
    return blocks


def system_paths() -> list[Path]:
    paths = ssl.get_default_verify_paths()
    found = [
        p for p in (paths.cafile, paths.openssl_cafile, paths.capath, paths.openssl_capath) if p
    ]
    try:
        import certifi

        found.append(certifi.where())
    except ImportError:  # certifi is optional
        pass
    unique: list[Path] = []
    resolved: set[Path] = set()
    for text in found:
        path = Path(text)
        real = path.resolve()
        if real not in resolved:
            resolved.add(real)
            unique.append(path)
    return unique


@dataclass
class Seen:
    """The files (resolved) and PEM blocks one load of the system store has read."""

    files: set[tuple[int, int]] = field(default_factory=set)
    blocks: set[bytes] = field(default_factory=set)
    skipped: int = 0

    def first_file(self, path: Path) -> bool:
        try:
            info = path.stat()  # through links: a hash link and its file are one file
        except OSError:
            return True
        if not info.st_ino:  # a file system without file numbers: no dedup by file
            return True
        real = (info.st_dev, info.st_ino)
        if real in self.files:
            self.skipped += 1
            return False
        self.files.add(real)
        return True


def read_bundle(path: Path, *, strict: bool, seen: Seen | None = None) -> list[x509.Certificate]:
    if seen is not None and not seen.first_file(path):
        return []
    try:
        data = path.read_bytes()
    except OSError as exc:
        if strict:
            raise PkiError(f"cannot read CA file {path}: {exc.strerror or exc}") from exc
        return []
    blocks = pem_blocks(data)
    # The decoder's own words (ParseError { kind: UnexpectedTag ... }) mean nothing to a
    # user: the messages say what the file should have been.
    if not blocks:
        try:
            return [load_certificate(data)]
        except PkiError as exc:
            if strict:
                raise PkiError(
                    f"{path}: not a DER or PEM X.509 certificate file (no '-----BEGIN "
                    "CERTIFICATE-----' block, and not one DER certificate)"
                ) from exc
            return []
    found: list[x509.Certificate] = []
    for index, block in enumerate(blocks, 1):
        if seen is not None:
            if block in seen.blocks:
                seen.skipped += 1
                continue
            seen.blocks.add(block)
        pem = b"-----BEGIN CERTIFICATE-----\n" + block + b"\n-----END CERTIFICATE-----\n"
        try:
            found.append(load_certificate(pem))
        except PkiError as exc:
            if strict:
                raise PkiError(
                    f"{path}: certificate {index} is unreadable (its PEM block does not hold "
                    "a valid X.509 certificate)"
                ) from exc
    return found


def read_dir(path: Path, *, strict: bool, seen: Seen | None = None) -> list[x509.Certificate]:
    try:
        entries = sorted(path.iterdir())
    except OSError as exc:
        if strict:
            raise PkiError(f"cannot read CA directory {path}: {exc.strerror or exc}") from exc
        return []
    found: list[x509.Certificate] = []
    for entry in entries:
        # A directory holds other files too (hash links, CRLs, READMEs): take what reads.
        if entry.is_file():
            found.extend(read_bundle(entry, strict=False, seen=seen))
    return found
