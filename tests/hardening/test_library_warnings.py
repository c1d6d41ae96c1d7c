"""A certificate name outside RFC 5280's length bounds prints no library warning.

Before: a common name of 100 characters (or a three-letter country) made ``check``,
``probe``, ``diagnose``, ``scan`` and ``trust`` print cryptography's ``UserWarning:
Attribute's length must be >= 1 and <= 64, but it was 100`` with the rdptrust source
line that read the name, on standard error, four times per command. Windows accepts
such names; rdptrust now reads them silently and shows them as they are.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from fixtures.cli import run_rdptrust
from fixtures.credentials import self_signed_with_name
from fixtures.lab import LabFactory
from rdptrust.lab.certs import HostCredentials
from rdptrust.pki.facts import certificate_facts, is_signed_by

LONG_CN = "h" * 100


def long_name_credentials() -> HostCredentials:
    # cryptography warns while building such a name, too: that is this test's doing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "USA", _validate=False),
                x509.NameAttribute(NameOID.COMMON_NAME, LONG_CN, _validate=False),
            ]
        )
        return self_signed_with_name(name, days=20)


def test_reading_the_name_raises_no_warning() -> None:
    # pytest runs with filterwarnings = error: any warning would fail here
    leaf = long_name_credentials().leaf
    facts = certificate_facts(leaf)
    assert facts.common_name == LONG_CN
    assert "C=USA" in facts.subject
    assert facts.parse_warnings == ()
    assert is_signed_by(leaf, leaf)


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "{t}", "--no-system-trust"],
        ["check", "{t}", "--no-system-trust", "--diagnose", "--root-update", "off"],
        ["probe", "{t}"],
        ["diagnose", "{t}", "--no-system-trust", "--root-update", "off"],
        ["scan", "{t}", "--diagnose", "--db", "{d}/inventory.sqlite3"],
        ["trust", "{t}", "--known-hosts", "{d}/pins.json"],
    ],
)
async def test_no_command_prints_a_warning(
    lab_factory: LabFactory, tmp_path: Path, argv: list[str]
) -> None:
    lab = await lab_factory()
    lab.set_credentials(long_name_credentials())
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    args = [a.format(t=lab.target, d=tmp_path) for a in argv]
    code, out, err = await run_rdptrust(*args, env=env, timeout=60)
    assert code in (0, 1, 2), (out, err)
    assert "Warning" not in err, err
    assert "Attribute's length" not in out + err
    assert ".py:" not in err
