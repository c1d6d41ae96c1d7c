"""The PKI responder's modes: parsing and printing ``ok``, ``delay:S``, ``blackhole``, ..."""

from __future__ import annotations

import pytest

from rdptrust.errors import UsageError
from rdptrust.lab.pki.modes import ALL_OK, OK, PURPOSES, PkiModes, ResponderMode


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("ok", ResponderMode("ok")),
        ("delay:2.5", ResponderMode("delay", 2.5)),
        (" Delay:0 ", ResponderMode("delay", 0.0)),
        ("blackhole", ResponderMode("blackhole")),
        ("refuse", ResponderMode("refuse")),
        ("404", ResponderMode("404")),
        ("garbage", ResponderMode("garbage")),
    ],
)
def test_mode_parse(text: str, mode: ResponderMode) -> None:
    assert ResponderMode.parse(text) == mode
    assert ResponderMode.parse(str(mode)) == mode


@pytest.mark.parametrize("text", ["", "slow", "delay", "delay:x", "delay:-1", "delay:nan", "500"])
def test_mode_parse_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        ResponderMode.parse(text)


def test_every_purpose_has_its_own_mode() -> None:
    modes = PkiModes(crl=ResponderMode("blackhole"), ocsp=ResponderMode("delay", 1.5))
    assert [str(modes.for_purpose(p)) for p in PURPOSES] == ["ok", "ok", "blackhole", "delay:1.5"]
    assert all(ALL_OK.for_purpose(p) == OK for p in PURPOSES)
