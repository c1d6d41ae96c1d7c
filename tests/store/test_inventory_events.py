"""Certificate changes between two observations of a host, and how each is classified."""

from __future__ import annotations

from rdptrust.lab.certs import CertKind, HostCredentials, make_host_credentials, windows_self_signed
from rdptrust.store.events import classify_change


def _facts(credentials: HostCredentials) -> dict[str, object]:
    from rdptrust.pki.facts import certificate_facts

    facts = certificate_facts(credentials.leaf)
    return {
        "subject": facts.subject,
        "self_signed": facts.self_signed,
        "public_key_sha256": facts.public_key_sha256,
    }


def test_change_classes() -> None:
    a = _facts(windows_self_signed("WIN-A"))
    a_again = _facts(windows_self_signed("WIN-A"))
    b = _facts(windows_self_signed("WIN-B"))
    ca_issued = _facts(make_host_credentials(CertKind.CA, computer_name="WIN-A"))
    assert classify_change(a, a_again) == "recreation"
    assert classify_change(a, ca_issued) == "ca-issued"
    assert classify_change(a, b) == "unexpected"
    assert classify_change(ca_issued, a) == "unexpected"
    # Same key re-signed is no Windows recreation either.
    assert classify_change(a, dict(a)) == "unexpected"
