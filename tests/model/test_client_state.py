"""The client-state document: strict parsing, one JSON form, the schema, the vectors."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from fixtures.documents import assert_valid
from pki.certs_for_tests import issue
from rdptrust.engine.client_state import read_client_state
from rdptrust.errors import DataError
from rdptrust.model.client_state import (
    ClientState,
    WinHttpProxy,
    client_profile,
    parse_client_state,
)
from rdptrust.model.windows import ClientProfile
from rdptrust.report.client_state import client_state_document

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "client-state"


def vector(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return document


@pytest.mark.parametrize("name", ["method2.json", "gpo-internal-ca.json", "static-proxy.json"])
def test_each_vector_is_valid_and_round_trips(name: str) -> None:
    document = vector(name)
    assert_valid(document)
    state = parse_client_state(document)
    assert client_state_document(state) == document


def test_the_vectors_say_what_their_names_say() -> None:
    assert parse_client_state(vector("method2.json")).disable_root_auto_update is True
    proxy = parse_client_state(vector("static-proxy.json"))
    assert proxy.proxy == WinHttpProxy(
        "http=127.0.0.1:3128;https=127.0.0.1:3129", "<local>;*.corp.example"
    )
    assert proxy.client == ClientProfile.WIN81
    assert proxy.url_retrieval_timeout_ms == 5000
    gpo = parse_client_state(vector("gpo-internal-ca.json"))
    assert gpo.authroot_last_sync == dt.datetime(2026, 4, 30, 8, 0, tzinfo=dt.UTC)


def test_a_full_state_round_trips_with_certificates() -> None:
    root = issue("Corp Root", ca=True)
    bad = issue("Revoked Intermediate", ca=True)
    state = ClientState(
        roots=(root.der,),
        authroot=(root.der,),
        intermediates=(bad.der,),
        disallowed=(bad.der,),
        authroot_ctl_present=True,
        authroot_last_sync=dt.datetime(2026, 5, 1, 12, 0, 0, 123000, tzinfo=dt.UTC),
        disable_root_auto_update=False,
        enable_disallowed_cert_auto_update=True,
        root_dir_url="http://ctl.corp.example/ctl",
        url_retrieval_timeout_ms=0,
        rev_accumulative_timeout_ms=30000,
        proxy=WinHttpProxy("proxy.corp.example:8080", None),
        os_version="6.1.7601",
        client=ClientProfile.WIN7,
        collected_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
    )
    document = client_state_document(state)
    assert_valid(document)
    text = json.dumps(document).encode()
    assert read_client_state(text, "state.json") == state


def _broken(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(vector("method2.json"))
    change(document)
    return document


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.update(schema="rdptrust.client-state/2"), "schema is"),
        (lambda d: d.update(extra=1), "unknown key 'extra'"),
        (lambda d: d.pop("auto_update"), "missing key 'auto_update'"),
        (lambda d: d["os"].update(client="win11"), "os.client must be one of"),
        (lambda d: d["stores"].update(root="MII"), "stores.root: expected a list"),
        (lambda d: d["stores"].update(root=["%%%"]), "stores.root[0]: not base64"),
        (lambda d: d["stores"].update(ca=["AAAA"]), "stores.ca[0]: not a DER certificate"),
        (lambda d: d["auto_update"].update(disable_root_auto_update=1), "expected true or false"),
        (lambda d: d["chain_engine"].update(url_retrieval_timeout_ms=-1), "milliseconds"),
        (lambda d: d["chain_engine"].update(url_retrieval_timeout_ms=1.5), "milliseconds"),
        (lambda d: d.update(collected_at="yesterday"), "RFC 3339"),
        (lambda d: d.update(collected_at="2026-02-30T00:00:00Z"), "not a real date"),
        (lambda d: d["winhttp_proxy"].update(server="a\nb"), "control characters"),
        (lambda d: d["winhttp_proxy"].update(server=""), "non-empty string"),
        (lambda d: d.update(os=[]), "os: expected an object"),
    ],
)
def test_anything_else_is_refused_naming_where(change: Any, words: str) -> None:
    document = _broken(change)
    with pytest.raises(DataError, match=r"^f\.json: ") as caught:
        parse_client_state(document, "f.json")
    assert words in str(caught.value)


def test_a_certificate_that_does_not_decode_is_refused() -> None:
    document = vector("method2.json")
    document["stores"]["disallowed"] = ["MAMCAQA="]  # a SEQUENCE, not a certificate
    with pytest.raises(DataError, match=r"stores\.disallowed\[0\] is unreadable"):
        read_client_state(json.dumps(document).encode(), "f.json")


@pytest.mark.parametrize(
    ("data", "words"),
    [(b"\xff\xfe", "not UTF-8"), (b"{", "not JSON"), (b"[]", "expected an object")],
)
def test_bytes_that_are_no_document_are_refused(data: bytes, words: str) -> None:
    with pytest.raises(DataError, match=words):
        read_client_state(data, "f.json")


@pytest.mark.parametrize(
    ("version", "profile"),
    [
        (None, ClientProfile.WIN10),
        ("6.1.7601", ClientProfile.WIN7),
        ("6.2.9200", ClientProfile.WIN81),
        ("6.3.9600", ClientProfile.WIN81),
        ("10.0.19045", ClientProfile.WIN10),
        ("10.0.26100", ClientProfile.WIN10),
    ],
)
def test_client_profile_follows_the_version(version: str | None, profile: ClientProfile) -> None:
    assert client_profile(version) == profile


def test_client_profile_refuses_what_is_no_version() -> None:
    with pytest.raises(ValueError, match="not a Windows version"):
        client_profile("Windows 10")
