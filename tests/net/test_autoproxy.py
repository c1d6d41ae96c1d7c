"""PAC answers, WPAD names and the --pac/--wpad usage errors (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.cli import run_rdptrust as rdptrust
from rdptrust.net.autoproxy import PacError, PacScript, first_proxy, read_pac_file, wpad_names


@pytest.mark.parametrize(
    ("answer", "proxy"),
    [
        ("DIRECT", None),
        ("PROXY 127.0.0.1:3128", "http://127.0.0.1:3128"),
        ("PROXY p1:8080; PROXY p2:8080; DIRECT", "http://p1:8080"),
        ("SOCKS s:1080; PROXY p:3128", "http://p:3128"),  # WinHTTP does not use SOCKS
        ("SOCKS s:1080", None),
        ("", None),
    ],
)
def test_the_first_usable_entry_is_taken(answer: str, proxy: str | None) -> None:
    assert first_proxy(answer) == proxy


def test_wpad_names_devolve_to_two_labels() -> None:
    assert wpad_names("a.b.corp.example") == (
        "wpad.a.b.corp.example",
        "wpad.b.corp.example",
        "wpad.corp.example",
    )
    assert wpad_names("corp.example.") == ("wpad.corp.example",)
    assert wpad_names("corp") == ("wpad.corp",)
    assert wpad_names("") == ()


def test_a_script_picks_per_url_and_an_error_means_direct() -> None:
    script = PacScript(
        "function FindProxyForURL(url, host) {"
        ' if (host == "boom.test") throw "x";'
        ' return shExpMatch(url, "*.crl") ? "PROXY c:1" : "DIRECT"; }',
        "test.pac",
    )
    assert script.proxy_for("http://ca.test/a.crl") == "http://c:1"
    assert script.proxy_for("http://ca.test/ocsp") is None
    assert script.proxy_for("http://boom.test/a.crl") is None


def test_a_file_that_is_no_pac_script_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pac"
    bad.write_text("this is { not javascript")
    with pytest.raises(PacError, match=r"bad\.pac"):
        read_pac_file(bad)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--proxy", "http://p:3128", "--wpad", "--wpad-domain", "corp.test"], "exclude"),
        (["--wpad-domain", "corp.test"], "needs --wpad"),
        (["--wpad", "--wpad-domain", "bad domain!"], "not a DNS domain"),
    ],
)
async def test_bad_proxy_options_are_one_line_usage_errors(args: list[str], words: str) -> None:
    code, _out, err = await rdptrust("diagnose", "127.0.0.1:9", *args)
    assert code == 64, err
    assert words in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


async def test_a_pac_file_that_is_no_script_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pac"
    bad.write_text("this is { not javascript")
    for pac, words in ((str(bad), "not a PAC script"), ("/nonexistent/x.pac", "cannot read")):
        code, _out, err = await rdptrust("diagnose", "127.0.0.1:1", "--pac", pac)
        assert code == 64, err
        assert words in err
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
