"""The JSON objects several documents share, each built in one place.

One key means one idea in every document: a certificate is always
:func:`certificate_document` (the inventory keeps fewer facts and writes a strict subset,
with the same key names); problems and security findings are :func:`problem_document`
(``code``, ``severity``, ``message``); a failed step is :func:`error_document`
(``kind``, ``message``); NTLM host information is :func:`ntlm_document`; pins and pin
checks are :func:`pin_document` and :func:`pin_check_document`. The schema files
describe each of them once per file, under the same ``$defs`` name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rdptrust.model.certificate import CertificateFacts
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.pin import Pin, PinCheck
from rdptrust.model.probe import NtlmInfo
from rdptrust.model.problems import Problem
from rdptrust.report.jsonform import optional_timestamp, timestamp


def certificate_document(facts: CertificateFacts) -> dict[str, Any]:
    """The ``certificate`` object: every fact of one certificate."""
    return {
        "subject": facts.subject,
        "issuer": facts.issuer,
        "common_name": facts.common_name,
        "self_signed": facts.self_signed,
        "serial": facts.serial,
        "not_before": timestamp(facts.not_before),
        "not_after": timestamp(facts.not_after),
        "days_left": facts.days_left,
        "sha1": facts.sha1,
        "sha256": facts.sha256,
        "san": list(facts.san),
        "eku": list(facts.eku),
        "eku_names": list(facts.eku_names),
        "key_type": facts.key_type,
        "key_bits": facts.key_bits,
        "signature_algorithm": facts.signature_algorithm,
        "signature_hash": facts.signature_hash,
        "crl_urls": list(facts.crl_urls),
        "ocsp_urls": list(facts.ocsp_urls),
        "ca_issuers_urls": list(facts.ca_issuers_urls),
        "is_ca": facts.is_ca,
        "public_key_sha256": facts.public_key_sha256,
        "parse_warnings": list(facts.parse_warnings),
    }


def problem_document(problem: Problem) -> dict[str, Any]:
    """A problem or a security finding: ``code``, ``severity``, ``message``."""
    return {"code": problem.code, "severity": problem.severity.value, "message": problem.message}


def problems_document(problems: Iterable[Problem]) -> list[dict[str, Any]]:
    """A list of :func:`problem_document`."""
    return [problem_document(p) for p in problems]


def error_document(error: ProbeFailure | None) -> dict[str, Any] | None:
    """Why a step failed (``kind``, ``message``); None when it did not."""
    return None if error is None else {"kind": error.kind, "message": error.message}


def ntlm_document(info: NtlmInfo | None) -> dict[str, Any] | None:
    """The ``ntlm`` object, or None when the host did not select CredSSP."""
    if info is None:
        return None
    version = info.os_version
    return {
        "target_name": info.target_name,
        "netbios_computer_name": info.netbios_computer_name,
        "netbios_domain_name": info.netbios_domain_name,
        "dns_computer_name": info.dns_computer_name,
        "dns_domain_name": info.dns_domain_name,
        "dns_tree_name": info.dns_tree_name,
        "os_version": None if version is None else str(version),
        "os_build": None if version is None else version.build,
        "server_time": optional_timestamp(info.server_time),
        "elapsed_ms": info.elapsed_ms,
        "error": error_document(info.error),
        "challenge_ms": info.challenge_ms,
    }


#: The NTLM keys the inventory keeps (a subset of the probe's ``ntlm`` object).
NTLM_SUMMARY_KEYS = (
    "netbios_computer_name",
    "netbios_domain_name",
    "dns_computer_name",
    "dns_domain_name",
    "dns_tree_name",
    "os_version",
    "os_build",
    "server_time",
)


def ntlm_summary_document(ntlm: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The short ``ntlm`` object (the inventory's, the lab's): the names, version and
    clock, from a full :func:`ntlm_document` or the inventory's stored keys."""
    if ntlm is None:
        return None
    doc = {key: ntlm.get(key) for key in NTLM_SUMMARY_KEYS}
    version = doc["os_version"]
    if doc["os_build"] is None and isinstance(version, str) and version.count(".") == 2:
        build = version.rsplit(".", 1)[1]
        doc["os_build"] = int(build) if build.isdigit() else None
    clock = doc["server_time"]
    if isinstance(clock, str):
        doc["server_time"] = timestamp(dt.datetime.fromisoformat(clock.replace("Z", "+00:00")))
    return doc


def pin_document(pin: Pin) -> dict[str, Any]:
    """A pinned certificate (its PEM left out: the store file holds it)."""
    return {
        "host": pin.host,
        "port": pin.port,
        "sha256": pin.sha256,
        "subject": pin.subject,
        "issuer": pin.issuer,
        "not_before": timestamp(pin.not_before),
        "not_after": timestamp(pin.not_after),
        "self_signed": pin.self_signed,
        "public_key_sha256": pin.public_key_sha256,
        "pinned_at": timestamp(pin.pinned_at),
    }


def pin_check_document(check: PinCheck | None) -> dict[str, Any] | None:
    """How the served certificate compares with its pin; None when it was not checked."""
    if check is None:
        return None
    return {
        "status": check.status.value,
        "looks_like_recreation": check.looks_like_recreation,
        "explanation": check.explanation,
    }


def files_document(files: Mapping[str, Path]) -> dict[str, str]:
    """What a command wrote: a name for each file, and its path."""
    return {name: str(path) for name, path in files.items()}
