"""The PowerShell script that writes a Windows client's ``rdptrust.client-state/1``.

For a client where rdptrust is not installed: ``rdptrust client-state --script`` writes
it, the admin runs it on the client, and ``diagnose --client-state FILE`` reads what it
wrote. It uses standard cmdlets only (``Get-ChildItem Cert:\\``, ``Get-ItemProperty``,
``ConvertTo-Json``), reads the same stores and registry values as
:mod:`rdptrust.engine.client_live` and changes nothing. The text is fixed: nothing from a
certificate or the network goes into it.
"""

from __future__ import annotations

CLIENT_STATE_SCRIPT = r"""# rdptrust client-state: this Windows client's certificate stores and
# chain-engine policy, as the JSON document rdptrust.client-state/1.
# It reads only; it changes nothing.
#   powershell -NoProfile -ExecutionPolicy Bypass -File client-state.ps1 -Out state.json
#   rdptrust diagnose HOST --client-state client-state.json
param([string]$Out = 'client-state.json')
Set-StrictMode -Version 2
$ErrorActionPreference = 'Stop'

$policyAuthRoot = 'HKLM:\SOFTWARE\Policies\Microsoft\SystemCertificates\AuthRoot'
$autoUpdate = 'HKLM:\SOFTWARE\Microsoft\SystemCertificates\AuthRoot\AutoUpdate'
$chainPolicy = 'HKLM:\SOFTWARE\Policies\Microsoft\SystemCertificates\ChainEngine\Config'
$chainLocal = 'HKLM:\SOFTWARE\Microsoft\Cryptography\OID\EncodingType 0' +
    '\CertDllCreateCertificateChainEngine\Config'
$connections = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections'
$utcFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'"
$invariant = [Globalization.CultureInfo]::InvariantCulture

function Get-StoreDer([string]$Name) {
    $found = @{}
    foreach ($location in 'LocalMachine', 'CurrentUser') {
        $path = "Cert:\$location\$Name"
        if (Test-Path -LiteralPath $path) {
            foreach ($cert in Get-ChildItem -LiteralPath $path) {
                $found[[Convert]::ToBase64String($cert.RawData)] = $true
            }
        }
    }
    return ,@($found.Keys | Sort-Object)
}

function Get-RegValue([string]$Path, [string]$Name) {
    $item = Get-ItemProperty -LiteralPath $Path -Name $Name -ErrorAction SilentlyContinue
    if ($null -eq $item) { return $null }
    return $item.$Name
}

function Get-Flag($Value) {
    if ($Value -isnot [int]) { return $null }
    return ($Value -ne 0)
}

function Get-Millis([string]$Name) {
    foreach ($path in $chainPolicy, $chainLocal) {
        $value = Get-RegValue $path $Name
        if ($value -is [int]) {
            if ($value -lt 0) { return [long]$value + 4294967296 }
            return [long]$value
        }
    }
    return $null
}

function Get-Text($Value) {
    if ($Value -isnot [string] -or $Value.Trim() -eq '') { return $null }
    return $Value.Trim()
}

function Get-LastSync {
    $bytes = Get-RegValue $autoUpdate 'LastSyncTime'
    if ($bytes -isnot [byte[]]) { return $null }
    if ($bytes.Length -ne 8) { throw "LastSyncTime is $($bytes.Length) bytes, not 8" }
    $ticks = [BitConverter]::ToInt64($bytes, 0)
    if ($ticks -le 0) { return $null }
    return [DateTime]::FromFileTimeUtc($ticks).ToString($utcFormat, $invariant)
}

function Get-WinHttpProxy {
    # Layout as netsh writes it: version, counter, flags (0x2: named proxy), then the
    # proxy server list and the bypass list, each a 4-byte length and ASCII text.
    $proxy = [ordered]@{ server = $null; bypass = $null }
    $blob = Get-RegValue $connections 'WinHttpSettings'
    if ($blob -isnot [byte[]]) { return $proxy }
    if ($blob.Length -lt 16) { throw 'WinHttpSettings is shorter than its header' }
    $flags = [BitConverter]::ToUInt32($blob, 8)
    $length = [BitConverter]::ToUInt32($blob, 12)
    $at = 16 + $length
    if ($at + 4 -gt $blob.Length) { throw 'WinHttpSettings: the proxy server runs past the end' }
    $server = [Text.Encoding]::ASCII.GetString($blob, 16, $length).Trim()
    $bypassLength = [BitConverter]::ToUInt32($blob, $at)
    if ($at + 4 + $bypassLength -gt $blob.Length) {
        throw 'WinHttpSettings: the bypass list runs past the end'
    }
    $bypass = [Text.Encoding]::ASCII.GetString($blob, $at + 4, $bypassLength).Trim()
    if (($flags -band 2) -and $server -ne '') {
        $proxy.server = $server
        if ($bypass -ne '') { $proxy.bypass = $bypass }
    }
    return $proxy
}

$version = [Environment]::OSVersion.Version
$client = 'win10'
if ($version.Major -lt 10) { $client = 'win8.1' }
if ($version.Major -lt 6 -or ($version.Major -eq 6 -and $version.Minor -lt 2)) { $client = 'win7' }

$document = [ordered]@{
    schema = 'rdptrust.client-state/1'
    collected_at = (Get-Date).ToUniversalTime().ToString($utcFormat, $invariant)
    os = [ordered]@{
        version = ('{0}.{1}.{2}' -f $version.Major, $version.Minor, $version.Build)
        client = $client
    }
    stores = [ordered]@{
        root = Get-StoreDer 'Root'
        authroot = Get-StoreDer 'AuthRoot'
        ca = Get-StoreDer 'CA'
        disallowed = Get-StoreDer 'Disallowed'
    }
    authroot_ctl = [ordered]@{
        present = ($null -ne (Get-RegValue $autoUpdate 'EncodedCtl'))
        last_sync = Get-LastSync
    }
    auto_update = [ordered]@{
        disable_root_auto_update = Get-Flag (Get-RegValue $policyAuthRoot 'DisableRootAutoUpdate')
        enable_disallowed_cert_auto_update = Get-Flag (
            Get-RegValue $policyAuthRoot 'EnableDisallowedCertAutoUpdate')
        root_dir_url = Get-Text (Get-RegValue $autoUpdate 'RootDirUrl')
    }
    chain_engine = [ordered]@{
        url_retrieval_timeout_ms = Get-Millis 'ChainUrlRetrievalTimeoutMilliseconds'
        rev_accumulative_url_retrieval_timeout_ms = Get-Millis (
            'ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds')
    }
    winhttp_proxy = Get-WinHttpProxy
}
$document | ConvertTo-Json -Depth 6 | Set-Content -LiteralPath $Out -Encoding UTF8
Write-Output "rdptrust client state written to $Out"
"""


def client_state_script() -> str:
    """The script's text (CRLF line ends, as Windows tools expect)."""
    return CLIENT_STATE_SCRIPT.replace("\r\n", "\n").replace("\n", "\r\n")
