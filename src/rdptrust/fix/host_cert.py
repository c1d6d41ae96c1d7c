"""Deployable files for a CA-issued RDP host certificate.

For the host: a password-protected PKCS#12 and ``install-<host>.ps1``, which imports it
into ``Cert:\\LocalMachine\\My``, checks the thumbprint, grants NETWORK SERVICE read access
to the private key (the Remote Desktop service runs as NETWORK SERVICE) and binds it to
RDP through ``Win32_TSGeneralSetting.SSLCertificateSHA1Hash``.
For clients: the CA certificate and ``trust-ca.ps1`` / ``trust-ca.cmd`` that put it into
the machine's Trusted Root store after checking its thumbprint.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from rdptrust.files import PRIVATE_MODE, write_atomic
from rdptrust.fix.escape import (
    cmd_string,
    comment_text,
    powershell_string,
    powershell_text_literal,
)

# SID of NETWORK SERVICE: language-independent, unlike the account's display name.
NETWORK_SERVICE_SID = "S-1-5-20"


def safe_file_stem(name: str) -> str:
    """A file name stem from a host name: anything odd becomes '_'."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".") or "host"
    return stem[:80]


def new_password() -> str:
    return secrets.token_urlsafe(18)


def pkcs12_bytes(
    name: str,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    ca_certificates: list[x509.Certificate],
    password: str,
    *,
    legacy: bool = False,
) -> bytes:
    """PKCS#12 with AES-256 and SHA-256 (Windows 10 1709 / Server 2019 and newer).

    *legacy* uses 3DES and SHA-1 instead, for Windows Server 2016 and older, which cannot
    read the modern form.
    """
    algorithm = (
        pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC
        if legacy
        else pkcs12.PBES.PBESv2SHA256AndAES256CBC
    )
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50000 if legacy else 100000)
        .key_cert_algorithm(algorithm)
        .hmac_hash(hashes.SHA1() if legacy else hashes.SHA256())
        .build(password.encode("utf-8"))
    )
    return pkcs12.serialize_key_and_certificates(
        name.encode("utf-8"), key, certificate, ca_certificates or None, encryption
    )


def host_install_script(host: str, pfx_name: str, thumbprint: str) -> str:
    thumb = thumbprint.upper()
    lines = [
        f"# Install the RDP host certificate for {comment_text(host)} (rdptrust).",
        "# Run on the RDP host in an elevated PowerShell, next to the .pfx file.",
        "#Requires -RunAsAdministrator",
        "$ErrorActionPreference = 'Stop'",
        f"$pfx = Join-Path $PSScriptRoot {powershell_string(pfx_name)}",
        f"$expected = {powershell_string(thumb)}",
        "$password = Read-Host -AsSecureString 'Password of the .pfx file'",
        "$cert = Import-PfxCertificate -FilePath $pfx -CertStoreLocation Cert:\\LocalMachine\\My"
        " -Password $password",
        "if ($cert.Thumbprint -ne $expected) {",
        '    throw "Imported certificate $($cert.Thumbprint) is not the expected $expected"',
        "}",
        "# The Remote Desktop service runs as NETWORK SERVICE: it needs Read on the private key.",
        "$rsa = [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::"
        "GetRSAPrivateKey($cert)",
        "$keyName = if ($rsa -is [System.Security.Cryptography.RSACng]) { $rsa.Key.UniqueName }"
        " else { $rsa.CspKeyContainerInfo.UniqueKeyContainerName }",
        "$keyFile = @(",
        "    (Join-Path $env:ProgramData ('Microsoft\\Crypto\\Keys\\' + $keyName)),",
        "    (Join-Path $env:ProgramData ('Microsoft\\Crypto\\RSA\\MachineKeys\\' + $keyName))",
        ") | Where-Object { Test-Path -LiteralPath $_ } | Select-Object -First 1",
        'if (-not $keyFile) { throw "Private key file $keyName not found" }',
        f"icacls.exe $keyFile /grant '*{NETWORK_SERVICE_SID}:R' | Out-Null",
        "if ($LASTEXITCODE -ne 0) { throw 'icacls failed to grant NETWORK SERVICE read access' }",
        "# Bind the certificate to the RDP listener.",
        "$ts = Get-CimInstance -Namespace root\\cimv2\\TerminalServices"
        " -ClassName Win32_TSGeneralSetting -Filter \"TerminalName='RDP-tcp'\"",
        "Set-CimInstance -InputObject $ts -Property @{SSLCertificateSHA1Hash = $expected}",
        "$bound = Get-CimInstance -Namespace root\\cimv2\\TerminalServices"
        " -ClassName Win32_TSGeneralSetting -Filter \"TerminalName='RDP-tcp'\"",
        "$now = $bound.SSLCertificateSHA1Hash",
        'if ($now -ne $expected) { throw "RDP-tcp still uses $now" }',
        'Write-Output "RDP now presents certificate $expected. New connections use it."',
    ]
    return "\r\n".join(lines) + "\r\n"


def trust_script(
    cer_name: str, thumbprint: str, subject: str, *, current_user: bool = False
) -> str:
    """PowerShell that checks the file's thumbprint, then imports it into a Root store."""
    store = "Cert:\\CurrentUser\\Root" if current_user else "Cert:\\LocalMachine\\Root"
    lines = [
        f"# Trust {comment_text(subject)} (rdptrust): import into {store}.",
        "# Run in an elevated PowerShell next to the .cer file."
        if not current_user
        else "# Run as the user who connects; no elevation needed.",
        "$ErrorActionPreference = 'Stop'",
        f"$file = Join-Path $PSScriptRoot {powershell_string(cer_name)}",
        f"$expected = {powershell_string(thumbprint.upper())}",
        f"$subject = {powershell_text_literal(subject)}",
        "$cert = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2"
        " -ArgumentList $file",
        "if ($cert.Thumbprint -ne $expected) {",
        '    throw "$file has thumbprint $($cert.Thumbprint), expected ${expected}; not importing"',
        "}",
        f"Import-Certificate -FilePath $file -CertStoreLocation {powershell_string(store)}"
        " | Out-Null",
        # The thumbprint matched: $subject is this certificate's subject as rdptrust read it.
        'Write-Output "Trusted $subject ($expected)"',
    ]
    return "\r\n".join(lines) + "\r\n"


def trust_cmd(cer_name: str, thumbprint: str, *, current_user: bool = False) -> str:
    """A .cmd that checks the thumbprint with certutil, then adds the file to Root."""
    quoted = cmd_string(cer_name)
    store = "-user " if current_user else ""
    lines = [
        "@echo off",
        "rem Trust a certificate (rdptrust). Run as the user who connects, next to the .cer"
        " file; not elevated (that would import into the admin's own store)."
        if current_user
        else "rem Trust a certificate (rdptrust). Run elevated, next to the .cer file.",
        "setlocal",
        'cd /d "%~dp0"',
        # The thumbprint is the SHA-1 of the DER file itself.
        f'certutil -hashfile {quoted} SHA1 | findstr /i /x /c:"{thumbprint.lower()}"'
        " >nul || (echo Thumbprint mismatch: not importing & exit /b 1)",
        f"certutil {store}-addstore -f Root {quoted} || exit /b 1",
        "echo Trusted.",
    ]
    return "\r\n".join(lines) + "\r\n"


def write_host_bundle(
    out_dir: Path,
    host: str,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    ca_certificate: x509.Certificate,
    password: str,
    *,
    legacy_pfx: bool = False,
) -> dict[str, Path]:
    """Write everything the host and its clients need into *out_dir*."""
    stem = safe_file_stem(host)
    thumb = certificate.fingerprint(hashes.SHA1()).hex()
    ca_thumb = ca_certificate.fingerprint(hashes.SHA1()).hex()
    files: dict[str, Path] = {}
    files["pfx"] = write_atomic(
        out_dir / f"{stem}.pfx",
        pkcs12_bytes(host, key, certificate, [ca_certificate], password, legacy=legacy_pfx),
        mode=PRIVATE_MODE,
    )
    files["password"] = write_atomic(
        out_dir / f"{stem}.pfx-password.txt", password + "\n", mode=PRIVATE_MODE
    )
    files["cert_pem"] = write_atomic(
        out_dir / f"{stem}.pem", certificate.public_bytes(serialization.Encoding.PEM)
    )
    files["key_pem"] = write_atomic(
        out_dir / f"{stem}.key.pem",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        mode=PRIVATE_MODE,
    )
    files["install_host"] = write_atomic(
        out_dir / f"install-{stem}.ps1",
        b"\xef\xbb\xbf" + host_install_script(host, f"{stem}.pfx", thumb).encode("utf-8"),
    )
    files["ca_cer"] = write_atomic(
        out_dir / "ca.cer", ca_certificate.public_bytes(serialization.Encoding.DER)
    )
    subject = ca_certificate.subject.rfc4514_string()
    files["trust_ca_ps1"] = write_atomic(
        out_dir / "trust-ca.ps1",
        b"\xef\xbb\xbf" + trust_script("ca.cer", ca_thumb, subject).encode("utf-8"),
    )
    files["trust_ca_cmd"] = write_atomic(out_dir / "trust-ca.cmd", trust_cmd("ca.cer", ca_thumb))
    return files
