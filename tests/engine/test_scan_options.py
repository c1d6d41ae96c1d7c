"""Scan options: what they refuse, and how many sockets one target may hold."""

from __future__ import annotations

import pytest

from rdptrust.engine.scan_options import ScanOptions


@pytest.mark.parametrize("bad", [{"concurrency": 0}, {"timeout": 0}, {"rate": 0}])
def test_bad_options(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        ScanOptions(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("enumerate_", "diagnose", "sockets"),
    [(False, False, 1), (True, False, 12), (False, True, 39), (True, True, 50)],
)
def test_sockets_per_host(enumerate_: bool, diagnose: bool, sockets: int) -> None:
    # main connection; + 6 protocols, 4 TLS versions and NTLM; + 8 parallel retrievals
    options = ScanOptions(enumerate=enumerate_, diagnose=diagnose)
    assert options.sockets_per_host() == sockets


def test_the_domain_is_stored_with_the_scan_and_reaches_the_model() -> None:
    from rdptrust.engine.scan_assessment import assessment_options

    options = ScanOptions(diagnose=True, domain="corp.example", dns_server="127.0.0.1:5353")
    again = ScanOptions.from_json(options.to_json())
    assert (again.domain, again.dns_server) == ("corp.example", "127.0.0.1:5353")
    windows = assessment_options(again).windows
    assert (windows.domain, windows.dns_server) == ("corp.example", "127.0.0.1:5353")
    # a scan stored before the setting existed resumes without it
    old = {k: v for k, v in options.to_json().items() if k not in ("domain", "dns_server")}
    assert ScanOptions.from_json(old).domain is None
