"""The client-state mapping: the same options as the described client would judge with."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pki.certs_for_tests import NOW, hierarchy, issue
from pki.judgements import HOST, probe
from rdptrust.engine import AssessOptions, assess_probe
from rdptrust.engine.client_state import (
    ctl_due,
    load_client_state,
    options_with_client_state,
    proxy_url,
    root_list_url,
)
from rdptrust.errors import DataError
from rdptrust.model.client_state import ClientState, WinHttpProxy
from rdptrust.model.target import Target
from rdptrust.model.windows import DEFAULT_ROOT_LIST_URL, ClientProfile, WindowsSettings

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "client-state"


@pytest.mark.parametrize(
    ("server", "url"),
    [
        (None, None),
        ("proxy:8080", "http://proxy:8080"),
        ("http=127.0.0.1:3128;https=127.0.0.1:3129", "http://127.0.0.1:3128"),
        ("https=secure:443;http=plain:80", "http://plain:80"),
        ("https=secure:443", None),
        ("http://p.example:3128", "http://p.example:3128"),
        (";;", None),
    ],
)
def test_proxy_url_is_the_one_for_http(server: str | None, url: str | None) -> None:
    assert proxy_url(WinHttpProxy(server, "<local>")) == url


def test_ctl_due_follows_last_sync() -> None:
    synced = dt.datetime(2026, 6, 1, 0, 0, tzinfo=dt.UTC)
    fresh = ClientState(authroot_ctl_present=True, authroot_last_sync=synced)
    assert ctl_due(fresh, synced + dt.timedelta(hours=23)) is False
    assert ctl_due(fresh, synced + dt.timedelta(days=1)) is True
    assert ctl_due(ClientState(authroot_ctl_present=True), synced) is True
    assert ctl_due(ClientState(authroot_last_sync=synced), synced) is True


def test_root_dir_url_over_http_is_where_the_root_list_comes_from() -> None:
    mirror = ClientState(root_dir_url="http://ctl.corp.example/ctl/")
    assert (
        root_list_url(mirror, DEFAULT_ROOT_LIST_URL)
        == "http://ctl.corp.example/ctl/authrootstl.cab"
    )
    share = ClientState(root_dir_url=r"file://\\fs01\ctl")
    assert root_list_url(share, DEFAULT_ROOT_LIST_URL) == DEFAULT_ROOT_LIST_URL


def test_the_client_stores_and_policy_replace_this_machine() -> None:
    chain = hierarchy()
    banned = issue("Banned CA", ca=True)
    state = ClientState(
        roots=(chain.root.der,),
        intermediates=(chain.intermediate.der,),
        disallowed=(banned.der,),
        authroot_ctl_present=True,
        authroot_last_sync=NOW - dt.timedelta(hours=2),
        disable_root_auto_update=True,
        enable_disallowed_cert_auto_update=False,
        root_dir_url="http://ctl.corp.example/ctl",
        url_retrieval_timeout_ms=5000,
        rev_accumulative_timeout_ms=8000,
        proxy=WinHttpProxy("127.0.0.1:3128", None),
        client=ClientProfile.WIN81,
    )
    given = AssessOptions(
        now=NOW, windows=WindowsSettings(url_timeout_s=30.0, ocsp_first=False), system_trust=True
    )
    options = options_with_client_state(given, state)
    assert options.anchors is not None
    assert [c.subject for c in options.anchors.certificates] == [chain.root.cert.subject]
    assert options.system_trust is False
    assert options.intermediates == (chain.intermediate.der,)
    assert options.disallowed == frozenset({banned.der})
    assert options.proxy == "http://127.0.0.1:3128"
    assert options.root_list_url == "http://ctl.corp.example/ctl/authrootstl.cab"
    assert options.windows == WindowsSettings(
        url_timeout_s=5.0,
        revocation_timeout_s=8.0,
        root_update=False,
        ocsp_first=False,  # not part of the client state: kept
        disallowed_update=False,
        ctl_due=False,
        client=ClientProfile.WIN81,
        root_dir_url="http://ctl.corp.example/ctl",
    )


def test_unset_policy_is_windows_default_not_the_flags() -> None:
    given = AssessOptions(
        now=NOW,
        windows=WindowsSettings(url_timeout_s=30.0, revocation_timeout_s=40.0, root_update=False),
    )
    options = options_with_client_state(given, ClientState(url_retrieval_timeout_ms=0))
    assert options.windows.url_timeout_s == 15.0
    assert options.windows.revocation_timeout_s == 20.0
    assert options.windows.root_update is True
    assert options.windows.disallowed_update is True
    assert options.windows.ctl_due is True
    assert options.proxy is None
    assert options.anchors is not None
    assert len(options.anchors) == 0


def test_ca_files_still_add_to_the_client_roots(tmp_path: Path) -> None:
    extra = issue("What-if Root", ca=True)
    path = tmp_path / "extra.pem"
    path.write_bytes(extra.pem)
    chain = hierarchy()
    given = AssessOptions(ca_files=(path,), now=NOW)
    options = options_with_client_state(given, ClientState(roots=(chain.root.der,)))
    assert options.anchors is not None
    assert {c.subject for c in options.anchors.certificates} == {
        chain.root.cert.subject,
        extra.cert.subject,
    }


def test_a_bad_file_is_one_data_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"schema": "rdptrust.client-state/1"}', encoding="utf-8")
    with pytest.raises(DataError, match=r"state\.json: missing key"):
        load_client_state(path)
    assert load_client_state(VECTORS / "method2.json").disable_root_auto_update is True


async def test_the_client_ca_store_completes_the_path_and_disallowed_distrusts(
    tmp_path: Path,
) -> None:
    chain = hierarchy(HOST)
    served = probe([chain.leaf.cert], host=HOST)  # the host sends its leaf only
    given = AssessOptions(
        diagnose=False, now=NOW, system_trust=False, known_hosts=tmp_path / "k.json"
    )
    target = Target(HOST, 3389)
    # Given the client trusts the root but lacks the intermediate: incomplete
    only_root = options_with_client_state(given, ClientState(roots=(chain.root.der,)))
    result = await assess_probe(target, served, only_root)
    assert result.trusted is False
    assert "incomplete-chain" in {p.code for p in result.problems}
    # When its CA store holds the intermediate, the path is complete and trusted
    state = ClientState(roots=(chain.root.der,), intermediates=(chain.intermediate.der,))
    result = await assess_probe(target, served, options_with_client_state(given, state))
    assert result.trusted is True
    assert len(result.path) == 3
    assert result.verdict == "ok", result.problems
    # And when the intermediate is also in Disallowed, the chain is distrusted
    banned = ClientState(
        roots=state.roots, intermediates=state.intermediates, disallowed=state.intermediates
    )
    result = await assess_probe(target, served, options_with_client_state(given, banned))
    assert result.trusted is False
    (problem,) = [p for p in result.problems if p.code == "disallowed-certificate"]
    assert "Test Issuing CA" in problem.message
    assert "certutil -delstore disallowed" in problem.message
    assert result.verdict == "critical"


@pytest.mark.parametrize(
    ("url", "bypass", "direct"),
    [
        ("http://crl.corp/ca.crl", "<local>", False),
        ("http://pki/ca.crl", "<local>", True),
        ("http://pki:8080/ca.crl", "<local>", True),
        ("http://crl.corp.example/ca.crl", "*.corp.example", True),
        ("http://CRL.Corp.Example/ca.crl", "*.corp.example", True),
        ("http://corp.example.evil/ca.crl", "*.corp.example", False),
        ("http://10.1.2.3/ca.crl", "10.*", True),
        ("http://110.1.2.3/ca.crl", "10.*", False),
        ("http://crl.test:8080/x", "crl.test:8080", True),
        ("http://crl.test/x", "crl.test:8080", False),
        ("http://crl.test/x", "crl.test:80", True),
        ("http://crl.test/x", "https://crl.test", False),
        ("http://crl.test/x", "http://crl.test", True),
        ("http://[::1]/x", "[::1]", True),
        ("http://a.test/x", "b.test; a.test", True),
        ("http://a.test/x", "b.test c.test", False),
        ("http://a.test/x", "", False),
        ("http://[x/", "*", False),
    ],
)
def test_the_winhttp_bypass_list(url: str, bypass: str, direct: bool) -> None:
    from rdptrust.engine.autoproxy import bypass_route, bypassed

    assert bypassed(url, bypass) is direct
    route = bypass_route("http://proxy.test:3128", bypass)
    assert route(url) == (None if direct else "http://proxy.test:3128")
