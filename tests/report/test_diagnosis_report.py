"""The diagnosis renderers: JSON keys of issue 4 and a terminal report that certificate
text cannot restyle. The probe is injected (a prepared ProbeResult); retrievals are real."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from rich.console import Console

from fixtures.documents import assert_valid
from rdptrust.engine import AssessOptions, assess
from rdptrust.fix.advice import fixes_for
from rdptrust.fix.method1 import bundle_stem
from rdptrust.model.assessment import Assessment
from rdptrust.model.probe import ProbeResult, Timings, TlsSessionInfo
from rdptrust.model.retrieval import Purpose
from rdptrust.model.target import Target
from rdptrust.model.windows import WindowsSettings
from rdptrust.report.diagnosis import diagnosis_document, render_diagnosis
from rdptrust.report.jsonform import dumps

HOSTILE_CN = "[bold red]PWNED[/bold red][link=http://evil]x[/link]"


def _self_signed(common_name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=180))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def _probe(target: Target, chain: tuple[bytes, ...]) -> ProbeResult:
    return ProbeResult(
        target=target,
        address="127.0.0.1",
        negotiation=None,
        tls=TlsSessionInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", chain),
        protocols=(),
        tls_versions=(),
        timings=Timings(connect_ms=1.0, x224_ms=1.0, tls_ms=2.0, total_ms=4.0),
        error=None,
    )


async def _diagnosis(tmp_path: Path, root_update: bool, target: Target | None = None) -> Assessment:
    target = target or Target("127.0.0.1", 3389)
    chain = (_self_signed(HOSTILE_CN),)

    async def prober(t: Target, _options: AssessOptions) -> ProbeResult:
        return _probe(t, chain)

    options = AssessOptions(
        fetch_timeout_s=1.0,
        # nothing listens on port 9 of loopback: a fast refusal here, which Windows
        # retries for about 2 s (WINDOWS.md §6)
        root_list_url="http://127.0.0.1:9/authrootstl.cab",
        known_hosts=tmp_path / "known_hosts.json",
        system_trust=False,
        windows=WindowsSettings(root_update=root_update),
    )
    return await assess(target, options, prober=prober)


async def test_json_has_the_documented_keys(tmp_path: Path) -> None:
    diagnosis = await _diagnosis(tmp_path, root_update=True)
    document = json.loads(dumps(diagnosis_document(diagnosis, fixes_for(diagnosis))))
    assert_valid(document)
    assert document["schema_version"] == 2
    assert {
        "probe",
        "retrievals",
        "predicted_stall_s",
        "problems",
        "verdict",
        "fixes",
    } <= set(document)
    # the trusted list's sequence file first (WINDOWS.md §2), then the disallowed list and
    # pin rules, each refused, so no cabinet follows
    purposes = [r["purpose"] for r in document["retrievals"]]
    assert purposes == ["root_list", "disallowed_list", "pin_rules"]
    retrieval = document["retrievals"][0]
    assert retrieval["url"] == "http://127.0.0.1:9/authrootseq.txt"
    assert "CredSSP" in document["prediction"]["not_measured"][0]
    assert retrieval["outcome"] == "refused"
    assert isinstance(retrieval["elapsed_ms"], float)
    assert retrieval["elapsed_ms"] < 1000.0
    # each refused sequence file costs what Windows pays for a refused connect, not
    # what it took here: 3 lists x 2 s
    assert retrieval["modelled"] is True
    assert [c["outcome"] for c in retrieval["connects"]] == ["refused"]
    assert document["prediction"]["first_connection"]["high_s"] == pytest.approx(6.0)
    assert document["predicted_stall_s"] == pytest.approx(6.0)
    assert document["verdict"] == "warning"
    assert "self-signed-not-pinned" in {p["code"] for p in document["problems"]}
    fix_ids = {f["id"] for f in document["fixes"]}
    assert "method1-trust-host-certificate" in fix_ids
    method1 = next(f for f in document["fixes"] if f["id"] == "method1-trust-host-certificate")
    commands = [c["command"] for c in method1["commands"]]
    assert commands[0].startswith("rdptrust trust 127.0.0.1:3389 --out ")
    assert any(c.startswith("certutil -addstore -f Root ") for c in commands)


async def test_root_update_off_makes_no_root_list_retrieval(tmp_path: Path) -> None:
    diagnosis = await _diagnosis(tmp_path, root_update=False)
    assert Purpose.ROOT_LIST not in {r.purpose for r in diagnosis.retrievals}
    # the disallowed list and pin rules stay: 2 refused sequence files x 2 s
    assert diagnosis.predicted_stall_s == pytest.approx(4.0)


async def test_certificate_text_cannot_inject_markup(tmp_path: Path) -> None:
    diagnosis = await _diagnosis(tmp_path, root_update=True)
    plain = io.StringIO()
    render_diagnosis(
        diagnosis, Console(file=plain, width=400, color_system=None), fixes_for(diagnosis)
    )
    text = plain.getvalue()
    # The subject reaches the terminal as the text it is, brackets and all,
    assert HOSTILE_CN in text
    assert "Method 1" in text
    assert "certutil -addstore -f Root" in text
    # and on a colour terminal it produces no hyperlink (OSC 8) and no bold red.
    colour = io.StringIO()
    console = Console(file=colour, width=400, force_terminal=True, color_system="standard")
    render_diagnosis(diagnosis, console)
    assert "\x1b]8;" not in colour.getvalue()
    assert "[bold red]PWNED" in colour.getvalue()


async def test_method1_names_the_files_that_rdptrust_trust_writes(tmp_path: Path) -> None:
    target = Target("::1", 3389)
    diagnosis = await _diagnosis(tmp_path, root_update=False, target=target)
    method1 = next(f for f in fixes_for(diagnosis) if f.id == "method1-trust-host-certificate")
    commands = [c.command for c in method1.commands]
    assert f"certutil -addstore -f Root {bundle_stem(target)}.cer" in commands
