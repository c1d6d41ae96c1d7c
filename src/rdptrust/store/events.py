"""What changed about a host since its previous observation, as inventory events.

Certificate changes are classified when they are recorded:

- ``recreation``: the old and new leaf are both self-signed, have the same subject and
  different keys, as when Windows recreates its RDP certificate every six months;
- ``ca-issued``: the new leaf is issued by a CA (an enrolment or a renewal);
- ``unexpected``: anything else (a self-signed certificate replacing a CA-issued one, a
  new subject): check the host, it may be an interception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rdptrust.model.outcome import ProbeFailure


@dataclass(frozen=True)
class NewEvent:
    """An event to insert for a new observation (see ``EventRecord`` for the fields)."""

    kind: str
    change: str | None
    old_sha256: str | None
    new_sha256: str | None
    detail: str


def classify_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """Class of a certificate change: ``recreation``, ``ca-issued`` or ``unexpected``.

    *old* and *new* hold ``subject``, ``self_signed`` and ``public_key_sha256``.
    """
    if (
        old["self_signed"]
        and new["self_signed"]
        and old["subject"] == new["subject"]
        and old["public_key_sha256"] != new["public_key_sha256"]
    ):
        return "recreation"
    if not new["self_signed"] and new["public_key_sha256"] is not None:
        return "ca-issued"
    return "unexpected"


CHANGE_DETAIL = {
    "recreation": "new self-signed certificate with the same subject and a new key, as when "
    "Windows recreates its RDP certificate every six months; clients that trusted the old "
    "one will prompt again (pin the new one or issue a CA certificate)",
    "ca-issued": "the host now presents a CA-issued certificate",
    "unexpected": "the certificate changed in a way no renewal explains; check the host, "
    "this may be an interception",
}

#: What classifying a change needs of each certificate (``subject``, ``self_signed``,
#: ``public_key_sha256``), by SHA-256.
ChangeFacts = dict[str, Mapping[str, Any]]


def new_events(
    facts: Mapping[str, Mapping[str, Any]],
    *,
    new_host: bool,
    was_ok: bool | None,
    now_ok: bool,
    old_sha: str | None,
    new_sha: str | None,
    error: ProbeFailure | None,
) -> list[NewEvent]:
    """The events of an observation, from the host's previous one.

    *was_ok* is the previous observation's reachability, *old_sha* the newest leaf seen
    before; *facts* holds both certificates when they differ.
    """
    if new_host:
        detail = "first scan of this host" + (
            "" if now_ok else f" (not reachable: {error.message if error else 'unknown'})"
        )
        return [NewEvent("first-seen", None, None, new_sha, detail)]
    events: list[NewEvent] = []
    if was_ok and not now_ok:
        message = error.message if error is not None else "unknown"
        events.append(NewEvent("became-unreachable", None, old_sha, None, message))
    elif was_ok is False and now_ok:
        events.append(NewEvent("became-reachable", None, None, new_sha, "the host answers again"))
    if new_sha is not None and old_sha is not None and new_sha != old_sha:
        change = classify_change(facts[old_sha], facts[new_sha])
        events.append(
            NewEvent("certificate-changed", change, old_sha, new_sha, CHANGE_DETAIL[change])
        )
    return events
