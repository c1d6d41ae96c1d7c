"""What Windows pays for a retrieval's TCP connects, as pure functions (WINDOWS.md §6).

rdptrust measures on the probing machine, where a refused connect fails at once; on
Windows the same refusal costs about 2 s per address, because the connect is retried
(rule ``tcp-refused-retry``: libuv PR 2896, 2002-2011 ms measured on Windows against ~0
on Linux). A connect that gets no answer is given up by TCP after about 21 s (rule
``tcp-connect-giveup``: KB 2786464) and never outlasts the URL's time-out. The addresses
are tried one after another (rule ``addresses-in-order``). The rule ids are those of
:mod:`rdptrust.pki.rules`; the prediction uses these charges, not what was measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rdptrust.model.retrieval import ConnectAttempt, ConnectOutcome, FetchOutcome, HttpResult
from rdptrust.model.windows import Basis, WindowsSettings
from rdptrust.pki.windows import retrieval_wait

REFUSED_SOURCE = "libuv PR 2896: 2002-2011 ms per refused connect on Windows, ~0 on Linux"
GIVE_UP_SOURCE = "KB 2786464: TCP gives up a connect after about 21 s"


@dataclass(frozen=True)
class ConnectCharge:
    """What one connect attempt costs on Windows, the rule it follows, what that rests
    on and where the figure comes from."""

    seconds: float
    rule: str
    basis: Basis
    source: str


def connect_charge(
    outcome: ConnectOutcome, elapsed_ms: float, settings: WindowsSettings
) -> ConnectCharge:
    """The Windows cost of one connect to one address.

    - refused or reset: ``refused_connect_s`` (2 s), observed (libuv PR 2896);
    - no answer: min(the URL time-out, ``tcp_give_up_s``), documented (KB 2786464);
    - connected or unreachable: what was observed here (an unreachable network fails
      locally on both systems: assumed).
    """
    observed = elapsed_ms / 1000.0
    if outcome in (ConnectOutcome.REFUSED, ConnectOutcome.RESET):
        return ConnectCharge(
            settings.refused_connect_s, "tcp-refused-retry", Basis.OBSERVED, REFUSED_SOURCE
        )
    if outcome == ConnectOutcome.TIMEOUT:
        seconds = min(settings.url_timeout_s, settings.tcp_give_up_s)
        return ConnectCharge(seconds, "tcp-connect-giveup", Basis.DOCUMENTED, GIVE_UP_SOURCE)
    if outcome == ConnectOutcome.UNREACHABLE:
        return ConnectCharge(observed, "observed-figure", Basis.ASSUMED, "measured here")
    return ConnectCharge(observed, "observed-figure", Basis.OBSERVED, "measured here")


@dataclass(frozen=True)
class NetworkWait:
    """A retrieval's wait on Windows: ``seconds``, whether it is ``modelled`` (not the
    figure observed), the ``rule`` it follows (None: the per-URL rules of
    :func:`~rdptrust.pki.windows.retrieval_wait` alone), its ``basis`` and a ``note``
    saying what was measured instead (with ``own_text``, the whole description of a
    retrieval rdptrust did not make)."""

    seconds: float
    modelled: bool
    rule: str | None = None
    basis: Basis | None = None
    note: str = ""
    own_text: bool = False


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}es"


def network_wait(
    outcome: FetchOutcome,
    elapsed_ms: float,
    attempts: Sequence[ConnectAttempt],
    settings: WindowsSettings,
) -> NetworkWait:
    """What one retrieval costs Windows, its connects charged by :func:`connect_charge`.

    The failed connects cost their Windows charge; the time after the connect that
    worked costs what was observed; the whole never exceeds the URL time-out (rule
    ``url-timeout``). Without a failed connect the per-URL rules decide alone.
    """
    failed = [a for a in attempts if a.outcome != ConnectOutcome.CONNECTED]
    seconds, modelled = retrieval_wait(outcome, elapsed_ms, settings)
    if not failed:
        return NetworkWait(seconds, modelled)
    charges = [connect_charge(a.outcome, a.elapsed_ms, settings) for a in failed]
    observed_failed = sum(a.elapsed_ms for a in failed) / 1000.0
    connected = any(a.outcome == ConnectOutcome.CONNECTED for a in attempts)
    rest = max(elapsed_ms / 1000.0 - observed_failed, 0.0) if connected else 0.0
    if outcome == FetchOutcome.TIMEOUT and connected:
        total = settings.url_timeout_s  # connected, then no answer in time
    else:
        total = min(sum(c.seconds for c in charges) + rest, settings.url_timeout_s)
    refused = sum(1 for c in charges if c.rule == "tcp-refused-retry")
    silent = sum(1 for c in charges if c.rule == "tcp-connect-giveup")
    if silent:
        rule, basis = "tcp-connect-giveup", Basis.DOCUMENTED
    elif refused:
        rule, basis = "tcp-refused-retry", Basis.OBSERVED
    else:
        return NetworkWait(seconds, modelled)
    parts = []
    if refused:
        parts.append(
            f"{_plural(refused, 'address')} refused: Windows retries, about"
            f" {settings.refused_connect_s:g} s each"
        )
    if silent:
        parts.append(
            f"{_plural(silent, 'address')} silent: up to"
            f" {min(settings.url_timeout_s, settings.tcp_give_up_s):g} s each (TCP give-up"
            f" {settings.tcp_give_up_s:g} s, URL time-out {settings.url_timeout_s:g} s)"
        )
    note = f"{'; '.join(parts)}; measured here {elapsed_ms / 1000.0:.1f} s"
    return NetworkWait(round(total, 3), abs(total - elapsed_ms / 1000.0) > 1e-3, rule, basis, note)


def result_wait(result: HttpResult, settings: WindowsSettings) -> NetworkWait:
    """:func:`network_wait` of one retrieval's result."""
    return network_wait(result.outcome, result.elapsed_ms, result.attempts, settings)
