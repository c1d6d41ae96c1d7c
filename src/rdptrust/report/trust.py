"""The ``rdptrust trust --json`` documents: ``rdptrust.trust/2`` and ``rdptrust.trust-list/1``.

``trust/2``: the host's ``certificate`` (the certificate object of every document), the
``pin`` check against the store (``status``, ``looks_like_recreation``,
``explanation``, as in ``rdptrust.diagnosis/2``), the ``previous`` pin (null when none),
whether the certificate is ``pinned`` now, the ``files`` written and the ``store``
path. Version 2 (from 1): ``pin_status``, ``looks_like_recreation`` and
``explanation`` (then only on a refusal) are the ``pin`` object; ``certificate`` has
every certificate key.

``trust-list/1``: ``pins``, each host, port, fingerprints, names, validity and when it
was pinned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rdptrust.model.certificate import CertificateFacts
from rdptrust.model.pin import Pin, PinCheck
from rdptrust.model.target import Target
from rdptrust.report.objects import (
    certificate_document,
    files_document,
    pin_check_document,
    pin_document,
)

TRUST_SCHEMA = "rdptrust.trust/2"
TRUST_LIST_SCHEMA = "rdptrust.trust-list/1"


def trust_document(
    target: Target,
    facts: CertificateFacts,
    check: PinCheck,
    *,
    pinned: bool,
    files: Mapping[str, Path],
    store: Path,
) -> dict[str, Any]:
    """Build the ``rdptrust.trust/2`` document of one ``rdptrust trust HOST``."""
    return {
        "schema": TRUST_SCHEMA,
        "target": str(target),
        "certificate": certificate_document(facts),
        "pin": pin_check_document(check),
        "previous": None if check.pin is None else pin_document(check.pin),
        "pinned": pinned,
        "files": files_document(files),
        "store": str(store),
    }


def trust_list_document(pins: Iterable[Pin]) -> dict[str, Any]:
    """Build the ``rdptrust.trust-list/1`` document of ``rdptrust trust --list``."""
    return {"schema": TRUST_LIST_SCHEMA, "pins": [pin_document(p) for p in pins]}
