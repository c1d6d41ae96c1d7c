"""rdptrust: find and fix the Remote Desktop "Securing remote connection" stall.

The library in four calls, all asynchronous, all returning typed, immutable results::

    import asyncio
    import rdptrust

    async def main() -> None:
        probe = await rdptrust.probe("rdp01.example.com:3389")
        print(probe.tls.version if probe.tls else probe.error)

        result = await rdptrust.diagnose("rdp01.example.com")
        print(result.verdict, result.predicted_stall_s)
        for fix in rdptrust.fixes_for(result):
            print(fix.title)

        async for item in rdptrust.scan(["10.0.0.5", "10.0.0.6:3390"]):
            print(item.target, item.verdict)

    asyncio.run(main())

:func:`probe` is what the host says (negotiation, TLS, the chain as sent);
:func:`diagnose` judges it the way the Windows client does and performs every
retrieval the client would make (an :class:`Assessment`); :func:`scan` assesses many
hosts at once; :func:`fixes_for` gives the fixes for an assessment. None of them raises
for anything a host or the network does: failures are in the results. Options are one
type, :class:`AssessOptions`. Errors rdptrust raises are under :class:`RdptrustError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rdptrust.engine.options import AssessOptions
    from rdptrust.errors import RdptrustError
    from rdptrust.model.assessment import Assessment, Fix, Verdict
    from rdptrust.model.probe import ProbeResult
    from rdptrust.model.target import Target

__all__ = [
    "AssessOptions",
    "Assessment",
    "Fix",
    "ProbeResult",
    "RdptrustError",
    "Target",
    "Verdict",
    "__version__",
    "diagnose",
    "fixes_for",
    "probe",
    "scan",
]

#: Names loaded on first use, so that ``rdptrust --version`` stays quick.
_LAZY = {
    "AssessOptions": "rdptrust.engine.options",
    "Assessment": "rdptrust.model.assessment",
    "Fix": "rdptrust.model.assessment",
    "Verdict": "rdptrust.model.assessment",
    "ProbeResult": "rdptrust.model.probe",
    "RdptrustError": "rdptrust.errors",
    "Target": "rdptrust.model.target",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rdptrust' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def _target(target: str | Target) -> Target:
    from rdptrust.model.target import Target, parse_target

    return target if isinstance(target, Target) else parse_target(target)


async def probe(
    target: str | Target,
    *,
    timeout: float = 10.0,
    enumerate: bool = True,
    standard_security: bool = True,
    ntlm: bool = False,
) -> ProbeResult:
    """Probe one RDP host (``"host"``, ``"host:port"``, ``"[::1]:3389"``) as mstsc starts.

    *timeout* is each connection's budget; *enumerate* adds one connection per security
    protocol and TLS version, *standard_security* one per Standard RDP Security method,
    *ntlm* one for the host's anonymous NTLM CHALLENGE (no credentials are sent).
    A malformed *target* raises :class:`~rdptrust.errors.UsageError`.
    """
    from rdptrust.net.probe import probe_host

    return await probe_host(
        _target(target),
        timeout=timeout,
        enumerate_protocols=enumerate,
        enumerate_tls_versions=enumerate,
        standard_security=standard_security,
        ntlm=ntlm,
    )


async def diagnose(target: str | Target, options: AssessOptions | None = None) -> Assessment:
    """Judge one host like the Windows client and time every retrieval it would make.

    The result holds the chain's facts, trust, problems, security findings, the
    retrievals made and the predicted wait on "Securing remote connection"; see
    :class:`~rdptrust.model.assessment.Assessment`. *options* default to Windows 10/11
    defaults, this machine's trust store and rdptrust's pinned-host store.
    """
    from rdptrust.engine.assessment import assess

    return await assess(_target(target), options)


async def scan(
    targets: Iterable[str | Target],
    options: AssessOptions | None = None,
    *,
    concurrency: int = 100,
) -> AsyncIterator[Assessment]:
    """Assess many hosts, at most *concurrency* at a time; yields each as it finishes.

    For a scan that is recorded, resumable and reported on, use ``rdptrust scan --db``.
    """
    from rdptrust.engine.fleet import assess_many

    async for item in assess_many((_target(t) for t in targets), options, concurrency=concurrency):
        yield item


def fixes_for(assessment: Assessment) -> tuple[Fix, ...]:
    """The fixes for what *assessment* found (Method 1, Method 2, the CA-issued
    certificate …), each with the exact commands and what it removes."""
    from rdptrust.fix.advice import fixes_for as advice

    return advice(assessment)
