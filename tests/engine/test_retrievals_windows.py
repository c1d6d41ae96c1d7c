"""Retrievals as Windows makes them, against the lab's PKI responder and loopback servers:
OCSP as GET then POST, AIA over HTTP only and until one works, delta CRLs, the limits."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from pki.certs_for_tests import Issued, issue
from rdptrust.engine.options import AssessOptions
from rdptrust.engine.retrievals import RetrievalPlan, RetrievalRun, make_retrievals
from rdptrust.lab.certs import LabCa
from rdptrust.lab.pki import PkiModes, PkiResponder, ResponderMode
from rdptrust.model.retrieval import FetchOutcome, Purpose, RevocationStatus
from rdptrust.model.windows import WindowsSettings
from rdptrust.pki.judge import _count
from rdptrust.pki.limits import NO_HTTPS_AIA, RetrievalLimits
from rdptrust.pki.trust import TrustAnchors, build_path

TIMEOUT = 2.0


async def _lab_run(modes: PkiModes, timeout: float = TIMEOUT) -> tuple[PkiResponder, RetrievalRun]:
    async with PkiResponder(None, modes) as pki:
        ca = LabCa.generate(urls=pki.urls())
        pki.ca = ca
        host = ca.issue("rdp01.example.test", dns_names=["rdp01.example.test"])
        served = list(host.chain)
        anchors = TrustAnchors((ca.root,), ("test",))
        path = build_path(served, anchors)
        run = await make_retrievals(
            served, path, anchors, RetrievalPlan(timeout, None), pinned=False
        )
    return pki, run


async def test_ocsp_goes_as_get_first() -> None:
    # Given the lab's OCSP responder answering both methods,
    pki, run = await _lab_run(PkiModes())
    ocsp = [r for r in pki.requests if r.purpose == "ocsp"]
    # then each certificate's OCSP request is a GET of the base64 request, and no POST.
    assert ocsp
    assert all(r.path.startswith("/ocsp/MF") for r in ocsp), ocsp
    answers = [f for f in run.fetched if f.purpose == Purpose.OCSP]
    assert answers
    assert all(f.revocation == RevocationStatus.GOOD for f in answers)
    assert all(f.detail and f.detail.startswith("GET") for f in answers)


async def test_ocsp_falls_back_to_post_when_get_gets_405() -> None:
    # Given an OCSP responder that refuses GET with 405,
    pki, run = await _lab_run(PkiModes(ocsp=ResponderMode("post-only")))
    ocsp = [r.path for r in pki.requests if r.purpose == "ocsp"]
    # then a GET was tried and a POST followed for each certificate,
    assert any(p.startswith("/ocsp/MF") for p in ocsp)
    assert "/ocsp" in ocsp
    answers = [f for f in run.fetched if f.purpose == Purpose.OCSP]
    gets = [f for f in answers if f.result.outcome == FetchOutcome.HTTP_ERROR]
    posts = [f for f in answers if f.revocation == RevocationStatus.GOOD]
    assert len(gets) == len(posts) >= 1
    assert all(f.result.status == 405 for f in gets)
    # and both count for Windows (the GET's time, then the POST's).
    retrievals, _ = _count(run.fetched, True, False, WindowsSettings())
    counted = [r for r in retrievals if r.purpose == Purpose.OCSP and r.counted]
    assert len(counted) == len(answers)


async def test_ocsp_get_only_responder_answers_the_get() -> None:
    pki, run = await _lab_run(PkiModes(ocsp=ResponderMode("get-only")))
    answers = [f for f in run.fetched if f.purpose == Purpose.OCSP]
    assert answers
    assert all(f.revocation == RevocationStatus.GOOD for f in answers)
    assert "/ocsp" not in [r.path for r in pki.requests]


async def test_gzip_bomb_crl_is_unusable_data() -> None:
    _pki, run = await _lab_run(PkiModes(crl=ResponderMode("gzip-bomb")))
    crls = [f for f in run.fetched if f.purpose == Purpose.CRL]
    assert crls
    for f in crls:
        assert f.result.outcome == FetchOutcome.INVALID
        assert f.detail is not None
        assert "Content-Encoding gzip, gzip" in f.detail


# -- hand-made responders -------------------------------------------------------------------


@dataclass
class Files:
    """A loopback HTTP server of fixed answers, recording the paths asked for."""

    base: str
    answers: dict[str, bytes]
    asked: list[str]
    delays: dict[str, float]


@pytest_asyncio.fixture
async def files() -> AsyncIterator[Files]:
    answers: dict[str, bytes] = {}
    asked: list[str] = []
    delays: dict[str, float] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ")[1].decode()
            asked.append(path)
            await asyncio.sleep(delays.get(path, 0.0))
            body = answers.get(path)
            status = b"200 OK" if body is not None else b"404 Not Found"
            body = body or b""
            writer.write(
                b"HTTP/1.1 "
                + status
                + f"\r\nContent-Length: {len(body)}\r\n".encode()
                + b"Connection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield Files(f"http://127.0.0.1:{port}", answers, asked, delays)
    finally:
        server.close()
        await server.wait_closed()


def _crl(issuer: Issued, *, delta_of: int | None = None) -> bytes:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(now - dt.timedelta(minutes=1))
        .next_update(now + dt.timedelta(days=1))
        .add_extension(x509.CRLNumber(2 if delta_of is not None else 1), critical=False)
    )
    if delta_of is not None:
        builder = builder.add_extension(x509.DeltaCRLIndicator(delta_of), critical=True)
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(  # type: ignore[arg-type]
        serialization.Encoding.DER
    )


def _with_freshest(cert: Issued, issuer: Issued, url: str) -> x509.Certificate:
    """*cert* re-issued with a Freshest CRL extension pointing at *url*."""
    c = cert.cert
    builder = (
        x509.CertificateBuilder()
        .subject_name(c.subject)
        .issuer_name(c.issuer)
        .public_key(c.public_key())  # type: ignore[arg-type]
        .serial_number(c.serial_number)
        .not_valid_before(c.not_valid_before_utc)
        .not_valid_after(c.not_valid_after_utc)
    )
    for ext in c.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)
    builder = builder.add_extension(x509.FreshestCRL([point]), critical=False)
    return builder.sign(issuer.key, hashes.SHA256())  # type: ignore[arg-type]


async def _run(
    served: list[x509.Certificate],
    anchors: TrustAnchors,
    limits: RetrievalLimits | None = None,
) -> RetrievalRun:
    plan = RetrievalPlan(TIMEOUT, None)
    if limits is not None:
        plan = RetrievalPlan(TIMEOUT, None, limits=limits)
    return await make_retrievals(served, build_path(served, anchors), anchors, plan, pinned=False)


async def test_delta_crl_is_fetched_after_the_base_and_counted(files: Files) -> None:
    # Given a CA whose leaf names a CRL and a delta CRL (Freshest CRL), both served,
    root = issue("Delta Root", ca=True, days=3650)
    leaf = issue("rdp01.example.test", issuer=root, crl_urls=[files.base + "/base.crl"])
    cert = _with_freshest(leaf, root, files.base + "/delta.crl")
    files.answers["/base.crl"] = _crl(root)
    files.answers["/delta.crl"] = _crl(root, delta_of=1)
    run = await _run([cert], TrustAnchors((root.cert,), ("test",)))
    # then both are fetched and judged, the delta marked as one,
    assert sorted(files.asked) == ["/base.crl", "/delta.crl"]
    (delta,) = [f for f in run.fetched if f.delta]
    assert delta.revocation == RevocationStatus.GOOD
    assert delta.detail is not None
    assert "delta CRL" in delta.detail
    # and Windows counts the delta as a second wait after the base CRL answered.
    retrievals, _ = _count(run.fetched, True, False, WindowsSettings(ocsp_first=False))
    assert [r.counted for r in retrievals] == [True, True]


async def test_a_full_crl_is_no_delta(files: Files) -> None:
    root = issue("Delta Root 2", ca=True, days=3650)
    leaf = issue("rdp02.example.test", issuer=root, crl_urls=[files.base + "/base.crl"])
    cert = _with_freshest(leaf, root, files.base + "/delta.crl")
    files.answers["/base.crl"] = _crl(root)
    files.answers["/delta.crl"] = _crl(root)
    run = await _run([cert], TrustAnchors((root.cert,), ("test",)))
    (delta,) = [f for f in run.fetched if f.delta]
    assert delta.result.outcome == FetchOutcome.INVALID
    assert delta.detail is not None
    assert "not a delta CRL" in delta.detail


async def test_https_aia_is_skipped_and_said(files: Files) -> None:
    # Given a leaf whose issuer is missing and whose only caIssuers URL is HTTPS,
    root = issue("AIA Root", ca=True, days=3650)
    leaf = issue(
        "rdp03.example.test", issuer=root, ca_issuers_urls=[files.base.replace("http", "https")]
    )
    run = await _run([leaf.cert], TrustAnchors((), ()))
    # then nothing is fetched, and the omission says why.
    assert files.asked == []
    assert not [f for f in run.fetched if f.purpose == Purpose.AIA]
    (omitted,) = run.omitted
    assert omitted.rule == NO_HTTPS_AIA
    assert "does not fetch AIA over HTTPS" in omitted.detail


async def test_aia_stops_at_the_first_url_that_works(files: Files) -> None:
    # Given three caIssuers URLs: a 404, the issuer, and one more,
    root = issue("AIA Root 2", ca=True, days=3650)
    inter = issue("AIA Issuing", issuer=root, ca=True, days=1000)
    urls = [files.base + p for p in ("/missing.crt", "/issuer.crt", "/never.crt")]
    leaf = issue("rdp04.example.test", issuer=inter, ca_issuers_urls=urls)
    files.answers["/issuer.crt"] = inter.der
    run = await _run([leaf.cert], TrustAnchors((root.cert,), ("test",)))
    # then the first two are tried, in order, and the third never is.
    assert files.asked[:2] == ["/missing.crt", "/issuer.crt"]
    assert "/never.crt" not in files.asked
    aia = [f for f in run.fetched if f.purpose == Purpose.AIA]
    assert [f.result.outcome for f in aia] == [FetchOutcome.HTTP_ERROR, FetchOutcome.OK]
    assert run.path.anchor is not None


async def test_aia_limits_per_certificate_and_chain_are_reported(files: Files) -> None:
    # Given seven caIssuers URLs that all fail,
    root = issue("AIA Root 3", ca=True, days=3650)
    inter = issue("AIA Issuing 3", issuer=root, ca=True, days=1000)
    urls = [f"{files.base}/{n}.crt" for n in range(7)]
    leaf = issue("rdp05.example.test", issuer=inter, ca_issuers_urls=urls)
    run = await _run([leaf.cert], TrustAnchors((root.cert,), ("test",)))
    # then Windows' three retrievals per chain are made, from the first five URLs,
    assert files.asked == ["/0.crt", "/1.crt", "/2.crt"]
    rules = [o.rule for o in run.omitted]
    assert rules == ["MaxAIAUrlCountInCert", "MaxAIAUrlRetrievalCountPerChain"]
    assert "2 of 7" in run.omitted[0].detail


async def test_aia_body_over_windows_limit_is_refused(files: Files) -> None:
    root = issue("AIA Root 4", ca=True, days=3650)
    inter = issue("AIA Issuing 4", issuer=root, ca=True, days=1000)
    leaf = issue("rdp06.example.test", issuer=inter, ca_issuers_urls=[files.base + "/big.crt"])
    files.answers["/big.crt"] = inter.der + b"\0" * 100_000
    run = await _run([leaf.cert], TrustAnchors((root.cert,), ("test",)))
    (aia,) = [f for f in run.fetched if f.purpose == Purpose.AIA]
    assert aia.result.outcome == FetchOutcome.INVALID
    assert aia.detail is not None
    assert "larger than 100000 bytes" in aia.detail


@pytest.mark.parametrize(
    ("field", "make"),
    [
        ("ocsp", lambda base: {"ocsp_urls": [f"{base}/o{n}" for n in range(3)]}),
        ("crl", lambda base: {"crl_urls": [f"{base}/c{n}.crl" for n in range(3)]}),
    ],
)
async def test_revocation_urls_past_the_limit_are_reported(
    files: Files, field: str, make: Callable[[str], dict[str, list[str]]]
) -> None:
    root = issue(f"Limit Root {field}", ca=True, days=3650)
    leaf = issue("rdp07.example.test", issuer=root, **make(files.base))  # type: ignore[arg-type]
    limits = RetrievalLimits(revocation_urls_per_cert=2)
    run = await _run([leaf.cert], TrustAnchors((root.cert,), ("test",)), limits)
    assert len([p for p in files.asked if p != "/"]) >= 2
    (omitted,) = run.omitted
    assert "1 of 3" in omitted.detail
    assert omitted.certificate is not None


async def test_lab_delta_crl_mode_is_fetched_and_counted() -> None:
    # Given the lab in delta mode: host certificates name the intermediate's delta CRL,
    pki, run = await _lab_run(PkiModes(crl=ResponderMode("delta")))
    # then the delta is fetched beside the base CRL, is a delta, and says good,
    assert "/crl/intermediate-delta.crl" in [r.path for r in pki.requests]
    (delta,) = [f for f in run.fetched if f.delta]
    assert delta.revocation == RevocationStatus.GOOD
    # and, CRL first, Windows counts it after the base CRL.
    retrievals, _ = _count(run.fetched, True, False, WindowsSettings(ocsp_first=False))
    assert [r.counted for r in retrievals if r.url == delta.url] == [True]


async def test_lab_huge_crl_is_refused_at_windows_limit() -> None:
    # (the lab builds each 100 MiB answer in memory: it is given time to)
    _pki, run = await _lab_run(PkiModes(crl=ResponderMode("huge")), timeout=20.0)
    crls = [f for f in run.fetched if f.purpose == Purpose.CRL]
    assert crls
    for f in crls:
        assert f.result.outcome == FetchOutcome.INVALID
        assert f.detail is not None
        assert f"larger than {100 * 1024 * 1024} bytes" in f.detail


@pytest.mark.parametrize("proxy", ["https://proxy.example.test", "http://", "socks5://p:1080"])
def test_assess_options_refuse_a_proxy_that_is_not_http(proxy: str) -> None:
    with pytest.raises(ValueError, match="proxy must be an http:// URL"):
        AssessOptions(proxy=proxy)
    assert AssessOptions(proxy="http://127.0.0.1:3128").proxy == "http://127.0.0.1:3128"


def _ladder(files: Files, depth: int, tag: str) -> tuple[Issued, list[Issued]]:
    """A root and *depth* intermediates below it, each naming its issuer over AIA."""
    root = issue(f"Ladder Root {tag}", ca=True, days=3650)
    chain = [root]
    for n in range(1, depth + 1):
        above = chain[-1]
        urls = [f"{files.base}/{tag}-{n - 1}.crt"] if n > 1 else []
        chain.append(issue(f"Ladder {tag} {n}", issuer=above, ca=True, ca_issuers_urls=urls))
        files.answers[f"/{tag}-{n}.crt"] = chain[-1].der
    return root, chain[1:]


async def test_aia_goes_up_the_chain_within_three_retrievals(files: Files) -> None:
    # Given a leaf served alone whose two intermediates each come only over AIA
    root, (int1, int2) = _ladder(files, 2, "two")
    leaf = issue("rdp10.example.test", issuer=int2, ca_issuers_urls=[files.base + "/two-2.crt"])
    # When the client's retrievals are made
    run = await _run([leaf.cert], TrustAnchors((root.cert,), ("test",)))
    # Then Windows goes on up: the issuer of the issuer is fetched too, and the chain ends
    # in the trusted root
    assert [p for p in files.asked if p.endswith(".crt")] == ["/two-2.crt", "/two-1.crt"]
    assert [c.subject for c in run.path.certificates] == [
        leaf.cert.subject,
        int2.cert.subject,
        int1.cert.subject,
        root.cert.subject,
    ]
    assert run.path.anchor is not None
    assert run.path.missing_issuer_urls == ()


async def test_a_fourth_aia_retrieval_is_not_made_and_is_said(files: Files) -> None:
    # Given four intermediates that come only over AIA: one more than Windows fetches
    root, chain = _ladder(files, 4, "four")
    leaf = issue(
        "rdp11.example.test", issuer=chain[-1], ca_issuers_urls=[files.base + "/four-4.crt"]
    )
    run = await _run([leaf.cert], TrustAnchors((root.cert,), ("test",)))
    # Then three are fetched (MaxAIAUrlRetrievalCountPerChain), the chain stays open and
    # the omission says why
    assert files.asked == ["/four-4.crt", "/four-3.crt", "/four-2.crt"]
    assert run.path.anchor is None
    assert [o.rule for o in run.omitted] == ["MaxAIAUrlRetrievalCountPerChain"]


async def test_a_slow_aia_answer_leaves_each_crl_its_whole_time_out(files: Files) -> None:
    # Given an intermediate that comes over AIA after 1.2 s and a leaf CRL that answers
    # after 1.0 s, with a 2 s time-out per URL
    root = issue("Slow AIA Root", ca=True, days=3650)
    inter = issue("Slow AIA Issuing", issuer=root, ca=True, days=1000)
    leaf = issue(
        "rdp12.example.test",
        issuer=inter,
        ca_issuers_urls=[files.base + "/inter.crt"],
        crl_urls=[files.base + "/leaf.crl"],
    )
    files.answers["/inter.crt"] = inter.der
    files.answers["/leaf.crl"] = _crl(inter)
    files.delays["/inter.crt"] = 1.2
    files.delays["/leaf.crl"] = 1.0
    run = await _run([leaf.cert], TrustAnchors((root.cert,), ("test",)))
    # Then the CRL gets its own 2 s and answers: it is no dead URL (a slow but answering
    # URL costs the first connection only, WINDOWS.md §5)
    (crl,) = [f for f in run.fetched if f.url.endswith("/leaf.crl")]
    assert crl.result.outcome == FetchOutcome.OK, crl
    assert crl.revocation == RevocationStatus.GOOD
