"""Trust sources and path building over certificates made here."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
from certs_for_tests import NOW, hierarchy, issue, rsa_key
from cryptography.hazmat.primitives import serialization

from rdptrust.errors import PkiError
from rdptrust.pki.trust import TrustAnchors, build_path, load_trust_anchors

CHAIN = hierarchy()
OTHER = hierarchy("other.example.test", slot=1)


def anchors(*issued: object) -> TrustAnchors:
    return TrustAnchors(tuple(i.cert for i in issued), ("test",))  # type: ignore[attr-defined]


NO_ANCHORS = TrustAnchors((), ())
BAD_BLOCK = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


# --- trust sources ---------------------------------------------------------------------


def test_ca_file_bundle_and_der(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"# comment\n" + CHAIN.root.pem + b"\n" + OTHER.root.pem)
    der = tmp_path / "root.cer"
    der.write_bytes(CHAIN.intermediate.der)
    loaded = load_trust_anchors(system=False, ca_files=[bundle, der])
    assert loaded.certificates == (CHAIN.root.cert, OTHER.root.cert, CHAIN.intermediate.cert)
    assert loaded.sources == (str(bundle), str(der))


def test_ca_dir_takes_certificates_and_skips_other_files(tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_bytes(CHAIN.root.pem)
    (tmp_path / "b.0").write_bytes(OTHER.root.der)
    (tmp_path / "README").write_text("not a certificate\n")
    (tmp_path / "sub").mkdir()
    loaded = load_trust_anchors(system=False, ca_dirs=[tmp_path])
    assert set(loaded.certificates) == {CHAIN.root.cert, OTHER.root.cert}
    assert loaded.sources == (str(tmp_path),)


def test_duplicates_are_kept_once(tmp_path: Path) -> None:
    one = tmp_path / "one.pem"
    one.write_bytes(CHAIN.root.pem + CHAIN.root.pem)
    loaded = load_trust_anchors(system=False, ca_files=[one, one])
    assert loaded.certificates == (CHAIN.root.cert,)


def test_the_same_unchanged_files_are_read_once_and_a_change_is_read_again(
    tmp_path: Path,
) -> None:
    # Given a CA file and a CA directory, loaded once
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(CHAIN.root.pem)
    folder = tmp_path / "cas"
    folder.mkdir()
    (folder / "a.pem").write_bytes(OTHER.root.pem)
    first = load_trust_anchors(system=False, ca_files=[bundle], ca_dirs=[folder])
    # When they are loaded again unchanged, the same anchors (and their index) are shared
    assert load_trust_anchors(system=False, ca_files=[bundle], ca_dirs=[folder]) is first
    # When the file is rewritten, or the directory gains a file, they are read again
    bundle.write_bytes(CHAIN.root.pem + CHAIN.intermediate.pem)
    second = load_trust_anchors(system=False, ca_files=[bundle], ca_dirs=[folder])
    assert second is not first
    assert CHAIN.intermediate.cert in second.certificates
    (folder / "b.pem").write_bytes(CHAIN.intermediate.pem)
    (folder / "a.pem").unlink()
    third = load_trust_anchors(system=False, ca_files=[bundle], ca_dirs=[folder])
    assert third is not second
    assert set(third.certificates) == {CHAIN.root.cert, CHAIN.intermediate.cert}
    # (a file in the directory rewritten in place leaves the directory's own stat as it was)
    (folder / "b.pem").write_bytes(CHAIN.intermediate.pem + OTHER.root.pem)
    fourth = load_trust_anchors(system=False, ca_files=[bundle], ca_dirs=[folder])
    assert OTHER.root.cert in fourth.certificates
    # And a file that has gone is an error again, not an answer kept from before
    bundle.unlink()
    with pytest.raises(PkiError):
        load_trust_anchors(system=False, ca_files=[bundle])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.pem", None, "cannot read CA file"),
        ("garbage.pem", b"hello world", "not a DER or PEM"),
        ("bad-block.pem", BAD_BLOCK, "unreadable"),
    ],
)
def test_unreadable_ca_files_are_pki_errors(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PkiError, match=message) as info:
        load_trust_anchors(system=False, ca_files=[path])
    assert str(path) in str(info.value)


def test_a_directory_given_as_ca_file_is_a_pki_error(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="cannot read CA file"):
        load_trust_anchors(system=False, ca_files=[tmp_path])


def test_empty_or_missing_ca_dir_is_a_pki_error(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="holds no certificate"):
        load_trust_anchors(system=False, ca_dirs=[tmp_path])
    with pytest.raises(PkiError, match="cannot read CA directory"):
        load_trust_anchors(system=False, ca_dirs=[tmp_path / "nope"])


def test_system_store_is_read() -> None:
    loaded = load_trust_anchors()
    assert len(loaded.certificates) > 10
    assert loaded.sources
    if importlib.util.find_spec("certifi") is not None:
        import certifi

        assert str(Path(certifi.where())) in loaded.sources
    assert load_trust_anchors(system=False).certificates == ()


# --- path building ---------------------------------------------------------------------


def test_served_in_order_ends_in_trusted_root() -> None:
    served = [CHAIN.leaf.cert, CHAIN.intermediate.cert, CHAIN.root.cert]
    path = build_path(served, anchors(CHAIN.root))
    assert path.certificates == tuple(served)
    assert path.anchor == CHAIN.root.cert
    assert path.trusted
    assert path.complete
    assert path.missing_issuer is None
    assert path.missing_issuer_urls == ()
    assert not path.root_self_signed_untrusted
    assert path.unused == ()


def test_root_not_served_is_taken_from_anchors() -> None:
    path = build_path([CHAIN.leaf.cert, CHAIN.intermediate.cert], anchors(OTHER.root, CHAIN.root))
    assert path.certificates == (CHAIN.leaf.cert, CHAIN.intermediate.cert, CHAIN.root.cert)
    assert path.anchor == CHAIN.root.cert


def test_out_of_order_duplicates_and_strangers() -> None:
    served = [
        CHAIN.leaf.cert,
        OTHER.intermediate.cert,
        CHAIN.root.cert,
        CHAIN.intermediate.cert,
        CHAIN.root.cert,
        CHAIN.leaf.cert,
    ]
    path = build_path(served, anchors(CHAIN.root))
    assert path.certificates == (CHAIN.leaf.cert, CHAIN.intermediate.cert, CHAIN.root.cert)
    assert path.anchor == CHAIN.root.cert
    assert path.unused == (OTHER.intermediate.cert,)


def test_missing_intermediate_names_it_and_where_to_fetch() -> None:
    # Given a host that sends only its leaf
    path = build_path([CHAIN.leaf.cert], anchors(CHAIN.root))
    # Then the path stops at the leaf and names the issuer and the caIssuers URL
    assert path.certificates == (CHAIN.leaf.cert,)
    assert path.anchor is None
    assert not path.complete
    assert path.missing_issuer == CHAIN.intermediate.cert.subject
    assert path.missing_issuer_urls == ("http://127.0.0.1:9/intermediate.cer",)
    # When the intermediate is fetched and given as extra, the path completes
    fetched = build_path([CHAIN.leaf.cert], anchors(CHAIN.root), extra=[CHAIN.intermediate.cert])
    assert fetched.anchor == CHAIN.root.cert
    assert fetched.missing_issuer is None


def test_untrusted_root_is_complete_but_not_trusted() -> None:
    served = [CHAIN.leaf.cert, CHAIN.intermediate.cert, CHAIN.root.cert]
    path = build_path(served, anchors(OTHER.root))
    assert path.complete
    assert path.anchor is None
    assert path.root_self_signed_untrusted
    assert path.missing_issuer is None


def test_self_signed_host_untrusted_and_trusted() -> None:
    host = issue("WIN-LAB01")
    untrusted = build_path([host.cert], load_trust_anchors())
    assert untrusted.certificates == (host.cert,)
    assert untrusted.complete
    assert untrusted.root_self_signed_untrusted
    trusted = build_path([host.cert], anchors(host))
    assert trusted.anchor == host.cert
    assert not trusted.root_self_signed_untrusted


def test_anchor_with_same_subject_and_key_but_other_der() -> None:
    # Given a root re-issued with the same name and key (new validity), trusted locally
    reissued = issue("Test Root 0", key=rsa_key(2048, 100), ca=True, days=7300)
    assert reissued.cert != CHAIN.root.cert
    served = [CHAIN.leaf.cert, CHAIN.intermediate.cert, CHAIN.root.cert]
    path = build_path(served, TrustAnchors((reissued.cert,), ("test",)))
    assert path.anchor == reissued.cert
    assert path.certificates[:2] == (CHAIN.leaf.cert, CHAIN.intermediate.cert)
    # The served root counts as that anchor: same name, same key
    assert path.trusted
    assert TrustAnchors((reissued.cert,), ()).anchor_for(CHAIN.root.cert) == reissued.cert
    assert TrustAnchors((OTHER.root.cert,), ()).anchor_for(CHAIN.root.cert) is None


def test_issuer_with_right_name_but_wrong_key_is_not_used() -> None:
    impostor = issue(
        "Test Issuing CA 0", issuer=CHAIN.root, key=rsa_key(2048, 7), ca=True, path_length=0
    )
    path = build_path([CHAIN.leaf.cert, impostor.cert], anchors(CHAIN.root))
    assert path.certificates == (CHAIN.leaf.cert,)
    assert path.missing_issuer == impostor.cert.subject
    assert path.unused == (impostor.cert,)


def test_cross_signed_loop_terminates() -> None:
    # Given two CAs that certify each other, and a leaf under one of them
    x_key, y_key = rsa_key(2048, 11), rsa_key(2048, 12)
    x_self = issue("CA X", key=x_key, ca=True)
    y_self = issue("CA Y", key=y_key, ca=True)
    x_by_y = issue("CA X", key=x_key, issuer=y_self, ca=True)
    y_by_x = issue("CA Y", key=y_key, issuer=x_self, ca=True)
    leaf = issue("looped.example.test", issuer=x_self, key=rsa_key(2048, 13))
    # When only the cross certificates are served
    path = build_path([leaf.cert, x_by_y.cert, y_by_x.cert], NO_ANCHORS)
    # Then the path follows the loop once and stops
    assert path.certificates == (leaf.cert, x_by_y.cert, y_by_x.cert)
    assert path.missing_issuer == x_self.cert.subject
    assert not path.complete
    # And when CA Y's own root is trusted, the path ends there
    trusted = build_path([leaf.cert, x_by_y.cert, y_by_x.cert], anchors(y_self))
    assert trusted.certificates == (leaf.cert, x_by_y.cert, y_self.cert)
    assert trusted.anchor == y_self.cert


def test_prefers_the_path_to_a_trusted_anchor() -> None:
    # Given an intermediate cross-signed by an untrusted root and a trusted one
    untrusted_root = issue("Old Root", key=rsa_key(2048, 21), ca=True)
    cross = issue(
        "Test Issuing CA 0", key=rsa_key(2048, 200), issuer=untrusted_root, ca=True, path_length=0
    )
    served = [CHAIN.leaf.cert, cross.cert, untrusted_root.cert]
    # When the trusted path's intermediate arrives as extra
    path = build_path(served, anchors(CHAIN.root), extra=[CHAIN.intermediate.cert])
    # Then the trusted path wins
    assert path.certificates == (CHAIN.leaf.cert, CHAIN.intermediate.cert, CHAIN.root.cert)
    assert path.anchor == CHAIN.root.cert
    # Without it, the complete but untrusted path is chosen
    alone = build_path(served, anchors(CHAIN.root))
    assert alone.anchor is None
    assert alone.root_self_signed_untrusted
    assert alone.certificates == (CHAIN.leaf.cert, cross.cert, untrusted_root.cert)


def test_nothing_served() -> None:
    path = build_path([], anchors(CHAIN.root))
    assert path.certificates == ()
    assert path.anchor is None
    assert not path.complete
    assert path.missing_issuer is None


def test_pem_written_by_cryptography_round_trips(tmp_path: Path) -> None:
    # A bundle with Windows line endings, as exported from certmgr, still loads
    pem = CHAIN.root.cert.public_bytes(serialization.Encoding.PEM).replace(b"\n", b"\r\n")
    path = tmp_path / "crlf.pem"
    path.write_bytes(pem)
    assert load_trust_anchors(system=False, ca_files=[path]).certificates == (CHAIN.root.cert,)


@pytest.mark.peer
@pytest.mark.parametrize(
    ("untrusted", "trusted", "ok"),
    [
        ([CHAIN.intermediate], [CHAIN.root], True),
        ([], [CHAIN.root], False),
        ([CHAIN.intermediate, CHAIN.root], [OTHER.root], False),
        ([OTHER.intermediate], [CHAIN.root], False),
    ],
)
def test_agrees_with_openssl_verify(
    tmp_path: Path, untrusted: list[object], trusted: list[object], ok: bool
) -> None:
    # Given the same leaf, served intermediates and trust store for openssl and for us
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (Debian package openssl)")
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(CHAIN.leaf.pem)
    cafile = tmp_path / "ca.pem"
    cafile.write_bytes(b"".join(i.pem for i in trusted))  # type: ignore[attr-defined]
    command = [openssl, "verify", "-CAfile", str(cafile)]
    if untrusted:
        chain = tmp_path / "untrusted.pem"
        chain.write_bytes(b"".join(i.pem for i in untrusted))  # type: ignore[attr-defined]
        command += ["-untrusted", str(chain)]
    # openssl checks validity against the real clock; these certificates are valid around NOW
    command += ["-attime", str(int(NOW.timestamp())), str(leaf)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    # When we build the path
    path = build_path(
        [CHAIN.leaf.cert, *(i.cert for i in untrusted)],  # type: ignore[attr-defined]
        load_trust_anchors(system=False, ca_files=[cafile]),
    )
    # Then both reach the same conclusion
    assert (result.returncode == 0) is ok, result.stdout + result.stderr
    assert path.trusted is ok
