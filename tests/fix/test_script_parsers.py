"""Every PowerShell, .reg and .cmd file rdptrust writes, read back by a parser.

The files are made the way the commands make them (``trust --out``, ``ca issue``,
``policy``), for certificates whose subjects are hostile: quotes, ``$()``, backticks,
newlines. A hostile subject must leave the syntax tree exactly as a plain one does, and
sit in it as one string literal.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from fix.script_grammars import (
    CmdQuotingError,
    RegSyntaxError,
    check_cmd_percent_signs,
    check_cmd_value_inert,
    nodes_of_type,
    parse_powershell,
    parse_reg,
    syntax_faults,
)
from pki.certs_for_tests import issue
from rdptrust.fix.escape import powershell_text_literal, reg_string
from rdptrust.fix.method1 import write_trust_bundle
from rdptrust.fix.policy import (
    PolicySet,
    reg_file_text,
    retrieval_timeouts,
    root_autoupdate,
    write_policy_artifacts,
)
from rdptrust.fix.registry_pol import PolicyEntry
from rdptrust.model.target import Target
from rdptrust.pki.ca import CertificateAuthority

PLAIN = "rdptrust test host"
HOSTILE = [
    "x'; Remove-Item C:\\ -Recurse; '",
    'a"b $(Stop-Computer) `whoami` ${env:PATH} @(1)',
    "line one\nInvoke-Expression 'calc'\r\n# not a comment",
    "\u2019; Stop-Computer; \u2018 and 'single' \"double\"",
    "100% & echo ^pwned | more < in > out",
]


def _certificate(common_name: str) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return issue("host", subject=subject).cert


def _ps1(path: Path) -> str:
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf"), f"{path.name} has no UTF-8 BOM"
    return data[3:].decode("utf-8")


def _shape(text: str) -> str:
    """The tree's node types only (tree-sitter's S-expression carries no text)."""
    return str(parse_powershell(text).root_node)


def _trust_files(tmp_path: Path, common_name: str) -> dict[str, Path]:
    target = Target("rdp01.lab.test", 3389)
    return write_trust_bundle(tmp_path / "out", target, _certificate(common_name))


def _ca_files(tmp_path: Path, ca_name: str) -> dict[str, Path]:
    authority = CertificateAuthority.init(tmp_path / "ca", name=ca_name, key_size=2048)
    issued = authority.issue("rdp01.lab.test")
    from rdptrust.fix.host_cert import write_host_bundle

    return write_host_bundle(
        tmp_path / "bundle",
        "rdp01.lab.test",
        issued.key,
        issued.certificate,
        authority.certificate,
        "password",
    )


# --- PowerShell -----------------------------------------------------------------------


@pytest.mark.parametrize("subject", HOSTILE)
def test_trust_script_parses_and_keeps_the_subject_one_literal(
    tmp_path: Path, subject: str
) -> None:
    # Given the Method 1 script for a hostile subject, and for a plain one
    hostile = _ps1(_trust_files(tmp_path / "h", subject)["ps1"])
    plain = _ps1(_trust_files(tmp_path / "p", PLAIN)["ps1"])
    tree = parse_powershell(hostile)
    # Then every line ends in CRLF, inside the subject's literal too: no bare LF or CR
    assert "\n" not in hostile.replace("\r\n", ""), repr(hostile)
    assert "\r" not in hostile.replace("\r\n", ""), repr(hostile)
    # and it parses with no ERROR or MISSING node
    assert syntax_faults(tree) == []
    # and its tree has exactly the plain script's shape: nothing of the subject became code
    assert _shape(hostile) == _shape(plain)
    # and the subject is one verbatim string literal, the value of $subject
    rfc4514 = _certificate(subject).subject.rfc4514_string()
    expected = powershell_text_literal(rfc4514)
    literals = [n for n in nodes_of_type(tree, "string_literal") if n.text == expected.encode()]
    assert len(literals) == 1
    (inner,) = literals[0].children
    assert inner.type == "verbatim_string_characters"
    assert inner.text == expected.encode()


@pytest.mark.parametrize("subject", HOSTILE[:3])
def test_ca_bundle_scripts_parse_for_a_hostile_ca_name(tmp_path: Path, subject: str) -> None:
    # The CA name is checked to 64 characters; the hostile parts fit.
    name = subject.replace("\r", "")[:64]
    hostile = _ca_files(tmp_path / "h", name)
    plain = _ca_files(tmp_path / "p", PLAIN)
    for kind in ("install_host", "trust_ca_ps1"):
        text = _ps1(hostile[kind])
        assert syntax_faults(parse_powershell(text)) == [], kind
        assert _shape(text) == _shape(_ps1(plain[kind])), kind


@pytest.mark.parametrize(
    "policy",
    [root_autoupdate(True), root_autoupdate(False), retrieval_timeouts(5000, 10000)],
    ids=lambda p: p.name,
)
def test_policy_scripts_parse(tmp_path: Path, policy: PolicySet) -> None:
    files = write_policy_artifacts(policy, tmp_path)
    tree = parse_powershell(_ps1(files["ps1"]))
    assert syntax_faults(tree) == []
    commands = [n.text.decode() for n in nodes_of_type(tree, "command_name")]
    assert commands.count("New-ItemProperty") == len(policy.entries)


def test_the_parser_does_see_a_broken_quote() -> None:
    # A test that cannot fail proves nothing: a literal closed early is code to the parser.
    broken = "$subject = 'x'; Remove-Item C:\\ -Recurse; ''\r\n"
    good = f"$subject = {powershell_text_literal(HOSTILE[0])}\r\n"
    assert _shape(broken) != _shape(good)
    assert syntax_faults(parse_powershell("$subject = 'unterminated\r\n"))


# --- .reg -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [root_autoupdate(True), retrieval_timeouts(5000, 10000)],
    ids=lambda p: p.name,
)
def test_policy_reg_file_is_regedit_format_with_the_policy_values(
    tmp_path: Path, policy: PolicySet
) -> None:
    files = write_policy_artifacts(policy, tmp_path)
    keys = parse_reg(files["reg"].read_bytes())
    for entry in policy.entries:
        value = keys[f"HKEY_LOCAL_MACHINE\\{entry.key}"][entry.value_name]
        assert value.kind == "dword"
        assert value.value == entry.value


@pytest.mark.parametrize("text", HOSTILE[:2] + HOSTILE[3:] + ["C:\\path\\", '\\"', ""])
def test_reg_strings_round_trip_through_the_strict_parser(text: str) -> None:
    policy = PolicySet(
        "t", "t", "t", (PolicyEntry.string(r"Software\rdptrust", text or "v", text),)
    )
    data = b"\xff\xfe" + reg_file_text(policy).encode("utf-16-le")
    value = parse_reg(data)["HKEY_LOCAL_MACHINE\\Software\\rdptrust"][text or "v"]
    assert value.kind == "sz"
    assert value.value == text


@pytest.mark.parametrize(
    "line",
    [
        '"a"b"=dword:00000001',  # a quote not escaped
        '"a\\q"=dword:00000001',  # an escape regedit does not know
        '"a"=dword:1',  # dword is 8 hex digits
        '"a"="x" ; trailing',  # text after the string
        '"a"=hex:0,1',  # bytes are two digits
    ],
)
def test_the_reg_parser_refuses_what_regedit_refuses(line: str) -> None:
    text = (
        "Windows Registry Editor Version 5.00\r\n\r\n"
        f"[HKEY_LOCAL_MACHINE\\Software\\x]\r\n{line}\r\n"
    )
    with pytest.raises(RegSyntaxError):
        parse_reg(b"\xff\xfe" + text.encode("utf-16-le"))
    # and a v5 file without its UTF-16 BOM is refused
    with pytest.raises((RegSyntaxError, UnicodeDecodeError)):
        parse_reg(text.replace(line, '"a"=dword:00000001').encode("utf-8"))


def test_reg_string_escapes_what_the_format_requires() -> None:
    assert reg_string('a"b\\c') == '"a\\"b\\\\c"'


# --- .cmd -----------------------------------------------------------------------------


def test_trust_cmd_quotes_every_certificate_derived_value(tmp_path: Path) -> None:
    files = _trust_files(tmp_path, HOSTILE[4])
    script = files["cmd"].read_text(encoding="utf-8")
    check_cmd_percent_signs(script)
    der = files["cer"].read_bytes()
    thumb = x509.load_der_x509_certificate(der).fingerprint(hashes.SHA1()).hex()
    check_cmd_value_inert(script, files["cer"].name)
    check_cmd_value_inert(script, thumb)
    # nothing of the subject reaches the .cmd at all
    for part in ("100%", "echo ^pwned", "| more"):
        assert part not in script


def test_ca_cmd_quotes_its_values(tmp_path: Path) -> None:
    files = _ca_files(tmp_path, PLAIN)
    script = files["trust_ca_cmd"].read_text(encoding="utf-8")
    check_cmd_percent_signs(script)
    check_cmd_value_inert(script, "ca.cer")


@pytest.mark.parametrize("char", ["%", "^", "&", "|", "<", ">"])
def test_the_cmd_checker_fails_on_an_unescaped_subject_character(char: str) -> None:
    # Given a .cmd line that puts a subject in as it is (what rdptrust must never do)
    subject = f"CN=evil{char}x"
    unquoted = f"@echo off\r\necho Trusting {subject}\r\n"
    # Then the checker refuses it, quoted or not where cmd.exe would act on the character
    with pytest.raises(CmdQuotingError):
        check_cmd_value_inert(unquoted, subject)
    if char == "%":
        with pytest.raises(CmdQuotingError):
            check_cmd_value_inert(f'echo "{subject}"\r\n', subject)
        with pytest.raises(CmdQuotingError):
            check_cmd_percent_signs(f'echo "{subject}"\r\n')
    else:
        check_cmd_value_inert(f'echo "{subject}"\r\n', subject)
