"""KB 2915774 Method 1: trust the host's own certificate on the clients.

For one pinned host certificate rdptrust writes the certificate (``.cer`` DER and
``.pem``), a PowerShell script that checks the file's thumbprint and then imports it into
``Cert:\\LocalMachine\\Root`` (or ``CurrentUser\\Root``), and a ``.cmd`` using
``certutil -addstore -f Root`` after the same check.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from rdptrust.files import write_atomic
from rdptrust.fix.host_cert import safe_file_stem, trust_cmd, trust_script
from rdptrust.model.target import Target


def bundle_stem(target: Target) -> str:
    return safe_file_stem(f"{target.host}_{target.port}")


def write_trust_bundle(
    out_dir: Path, target: Target, certificate: x509.Certificate, *, current_user: bool = False
) -> dict[str, Path]:
    """Write the Method 1 files for *certificate* of *target* into *out_dir*."""
    stem = bundle_stem(target)
    thumb = certificate.fingerprint(hashes.SHA1()).hex()
    subject = certificate.subject.rfc4514_string()
    cer = f"{stem}.cer"
    return {
        "cer": write_atomic(out_dir / cer, certificate.public_bytes(serialization.Encoding.DER)),
        "pem": write_atomic(
            out_dir / f"{stem}.pem", certificate.public_bytes(serialization.Encoding.PEM)
        ),
        "ps1": write_atomic(
            out_dir / f"trust-{stem}.ps1",
            b"\xef\xbb\xbf"
            + trust_script(cer, thumb, subject, current_user=current_user).encode("utf-8"),
        ),
        "cmd": write_atomic(
            out_dir / f"trust-{stem}.cmd", trust_cmd(cer, thumb, current_user=current_user)
        ),
    }
