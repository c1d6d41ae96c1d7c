"""Method 2 of KB 2915774 and related chain-engine settings, as deployable artifacts.

For one set of machine-scope registry values rdptrust writes:

- ``Registry.pol`` for a GPO's ``Machine`` folder (or ``%windir%\\System32\\GroupPolicy\\Machine``),
- a ``.reg`` file (UTF-16LE with BOM, like regedit's own exports),
- a PowerShell script that sets the values and shows them afterwards,
- ``README.txt`` saying where each goes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rdptrust.files import write_atomic
from rdptrust.fix.escape import powershell_string, reg_string
from rdptrust.fix.registry_pol import PolicyEntry, RegType, build_registry_pol

AUTHROOT_POLICY_KEY = r"Software\Policies\Microsoft\SystemCertificates\AuthRoot"
#: Where the chain engine reads RootDirUrl: not a policy key (configure-trusted-roots-
#: disallowed-certificates; PROTOCOL.md), so a GPO sets it as a preference value.
AUTOUPDATE_KEY = r"Software\Microsoft\SystemCertificates\AuthRoot\AutoUpdate"
CHAIN_ENGINE_POLICY_KEY = r"Software\Policies\Microsoft\SystemCertificates\ChainEngine\Config"
GPO_ROOT_UPDATE_PATH = (
    "Computer Configuration > Administrative Templates > System > Internet Communication"
    " Management > Internet Communication settings > Turn off Automatic Root Certificates Update"
)


@dataclass(frozen=True)
class PolicySet:
    """A named group of machine-scope policy values and what they do."""

    name: str
    title: str
    description: str
    entries: tuple[PolicyEntry, ...]
    caveat: str = ""


def root_autoupdate(disable: bool) -> PolicySet:
    """Turn Automatic Root Certificates Update off (KB 2915774 Method 2) or back on."""
    value = 1 if disable else 0
    return PolicySet(
        name=f"root-autoupdate-{'disable' if disable else 'enable'}",
        title=f"Turn {'off' if disable else 'on'} Automatic Root Certificates Update",
        description=(
            "With DisableRootAutoUpdate=1 the Windows chain engine no longer downloads the"
            " trusted-root list (authrootstl.cab) from Windows Update when it meets an untrusted"
            " root, so an RDP client on a network that blocks that URL stops waiting for it. "
            f"Same as the Group Policy setting: {GPO_ROOT_UPDATE_PATH}."
            if disable
            else "DisableRootAutoUpdate=0 lets Windows download the trusted-root list again."
        ),
        entries=(PolicyEntry.dword(AUTHROOT_POLICY_KEY, "DisableRootAutoUpdate", value),),
        caveat=(
            "Windows then also stops learning new public roots and disallowed certificates"
            " from Windows Update; keep a local mirror (certutil -syncWithWU, RootDirUrl) where"
            " that matters."
            if disable
            else ""
        ),
    )


def disallowed_autoupdate(disable: bool) -> PolicySet:
    """Turn the untrusted (disallowed) list's and pin rules' sync off or back on."""
    value = 0 if disable else 1
    return PolicySet(
        name=f"disallowed-autoupdate-{'disable' if disable else 'enable'}",
        title=f"Turn {'off' if disable else 'on'} the disallowed certificate list update",
        description=(
            "With EnableDisallowedCertAutoUpdate=0 Windows 8.1 / Server 2012 R2 and later no"
            " longer download disallowedcertstl.cab and pinrulesstl.cab from Windows Update;"
            " those downloads run for trusted chains too, so Method 2 (DisableRootAutoUpdate)"
            " alone leaves them. On Windows 7 the value has no effect: Method 2 is the switch."
            if disable
            else "EnableDisallowedCertAutoUpdate=1 lets Windows download the disallowed list."
        ),
        entries=(PolicyEntry.dword(AUTHROOT_POLICY_KEY, "EnableDisallowedCertAutoUpdate", value),),
        caveat=(
            "Windows then no longer learns certificates Microsoft distrusts; prefer an internal"
            " mirror (rdptrust policy root-dir-url) where the clients cannot reach Windows Update."
            if disable
            else ""
        ),
    )


def root_dir_url(url: str) -> PolicySet:
    """Point the trusted and untrusted lists at an internal mirror (RootDirUrl)."""
    if not url.lower().startswith(("http://", "file://")) or any(c in url for c in "\r\n\0"):
        raise ValueError("RootDirUrl must be an http:// or file:// URL on one line")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number in range
    except ValueError as exc:
        raise ValueError(f"RootDirUrl {url!r} is not a usable URL: {exc}") from None
    if parts.scheme.lower() == "http" and not parts.hostname:
        raise ValueError(f"RootDirUrl {url!r} names no host")
    if not (parts.netloc or parts.path.strip("/")):
        raise ValueError(f"RootDirUrl {url!r} names no folder")
    return PolicySet(
        name="root-dir-url",
        title="Fetch the certificate trust lists from an internal mirror",
        description=(
            f"RootDirUrl={url} makes Windows fetch authrootseq.txt, authrootstl.cab,"
            " disallowedcertstl.cab and pinrulesstl.cab there instead of Windows Update, so a"
            " client that cannot reach Windows Update stops waiting for them. Fill the mirror"
            " with 'certutil -syncWithWU DIR' on a machine that can."
        ),
        entries=(PolicyEntry.string(AUTOUPDATE_KEY, "RootDirUrl", url),),
        caveat=(
            "Keep the mirror current (a scheduled certutil -syncWithWU), or the lists age."
            " RootDirUrl lives under AuthRoot\\AutoUpdate, not under Policies: a value set"
            " there by a GPO stays when the GPO is removed (delete it to undo)."
        ),
    )


def retrieval_timeouts(url_timeout_ms: int, revocation_timeout_ms: int) -> PolicySet:
    """Shorten the chain engine's per-URL time-out and accumulative revocation budget."""
    return PolicySet(
        name="retrieval-timeouts",
        title="Set certificate retrieval time-outs",
        description=(
            f"ChainUrlRetrievalTimeoutMilliseconds={url_timeout_ms} caps each URL the chain"
            f" engine fetches (default 15000; without the accumulative flag revocation waits"
            f" this long per URL, no cap); ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds"
            f"={revocation_timeout_ms} is the budget of the accumulative regime, each URL"
            f" getting half of what remains (default 20000)."
        ),
        entries=(
            PolicyEntry.dword(
                CHAIN_ENGINE_POLICY_KEY, "ChainUrlRetrievalTimeoutMilliseconds", url_timeout_ms
            ),
            PolicyEntry.dword(
                CHAIN_ENGINE_POLICY_KEY,
                "ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds",
                revocation_timeout_ms,
            ),
        ),
        caveat=(
            "The policy key location of these values is only partly verified in public"
            " documentation; check the effect with 'certutil -verify -urlfetch' on one machine"
            " before deploying widely."
        ),
    )


def reg_file_text(policy: PolicySet) -> str:
    """The .reg file text (caller encodes it UTF-16LE with BOM)."""
    lines = ["Windows Registry Editor Version 5.00", "", f"; {policy.title} (rdptrust)"]
    current = None
    for entry in policy.entries:
        if entry.key != current:
            lines += ["", f"[HKEY_LOCAL_MACHINE\\{entry.key}]"]
            current = entry.key
        name = reg_string(entry.value_name)
        if entry.type == RegType.REG_DWORD:
            (number,) = struct.unpack("<I", entry.data)
            lines.append(f"{name}=dword:{number:08x}")
        elif entry.type == RegType.REG_SZ:
            lines.append(f"{name}={reg_string(str(entry.value))}")
        else:
            lines.append(f"{name}=hex({entry.type:x}):{','.join(f'{b:02x}' for b in entry.data)}")
    return "\r\n".join(lines) + "\r\n"


def powershell_text(policy: PolicySet) -> str:
    lines = [
        f"# {policy.title} (rdptrust). Run in an elevated PowerShell.",
        "#Requires -RunAsAdministrator",
        "$ErrorActionPreference = 'Stop'",
    ]
    for entry in policy.entries:
        path = powershell_string("HKLM:\\" + entry.key)
        name = powershell_string(entry.value_name)
        if entry.type == RegType.REG_DWORD:
            kind, value = "DWord", str(entry.value)
        elif entry.type == RegType.REG_SZ:
            kind, value = "String", powershell_string(str(entry.value))
        else:
            kind = "Binary"
            value = "([byte[]](" + ",".join(f"0x{b:02x}" for b in entry.data) + "))"
        lines += [
            f"New-Item -Path {path} -Force | Out-Null",
            f"New-ItemProperty -Path {path} -Name {name} -PropertyType {kind} -Value {value}"
            " -Force | Out-Null",
            f"Get-ItemProperty -Path {path} -Name {name} | Select-Object -Property {name}",
        ]
    return "\r\n".join(lines) + "\r\n"


def readme_text(policy: PolicySet, files: dict[str, str]) -> str:
    lines = [
        policy.title,
        "=" * len(policy.title),
        "",
        policy.description,
        "",
        "Values (HKEY_LOCAL_MACHINE):",
    ]
    lines += [
        f"  {e.key}\\{e.value_name} = {e.value!r} ({RegType(e.type).name})" for e in policy.entries
    ]
    lines += [
        "",
        "Deploy one of:",
        f"  {files['pol']}: copy into a GPO as Machine\\Registry.pol (SYSVOL\\<domain>\\Policies\\"
        "{GUID}\\Machine\\) or %windir%\\System32\\GroupPolicy\\Machine\\ for local policy, then"
        " gpupdate /force. Replacing a GPO's Registry.pol replaces its other registry settings:"
        " prefer the Group Policy editor for GPOs that hold more.",
        f"  {files['reg']}: reg import {files['reg']} (elevated), or double-click.",
        f"  {files['ps1']}: powershell -ExecutionPolicy Bypass -File {files['ps1']} (elevated).",
    ]
    if policy.caveat:
        lines += ["", "Note: " + policy.caveat]
    return "\r\n".join(lines) + "\r\n"


def write_policy_artifacts(policy: PolicySet, out_dir: Path) -> dict[str, Path]:
    """Write Registry.pol, .reg, .ps1 and README.txt for *policy* into *out_dir* atomically."""
    names = {
        "pol": "Registry.pol",
        "reg": f"rdptrust-{policy.name}.reg",
        "ps1": f"rdptrust-{policy.name}.ps1",
        "readme": "README.txt",
    }
    contents: dict[str, bytes] = {
        "pol": build_registry_pol(policy.entries),
        "reg": b"\xff\xfe" + reg_file_text(policy).encode("utf-16-le"),
        # A BOM makes Windows PowerShell 5.1 read the script as UTF-8.
        "ps1": b"\xef\xbb\xbf" + powershell_text(policy).encode("utf-8"),
        "readme": readme_text(policy, names).encode("utf-8"),
    }
    return {kind: write_atomic(out_dir / names[kind], contents[kind]) for kind in names}
