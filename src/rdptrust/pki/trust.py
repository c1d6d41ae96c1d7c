"""Trust sources and path building, without network access.

:func:`load_trust_anchors` reads the certificates a client trusts: the system store
(OpenSSL's default verify paths and certifi's bundle) and bundles or directories the
user names. :func:`build_path` builds, from the chain a host sent, the path a client
would build: leaf first, each certificate verified against the next one's key,
ending in a trusted anchor when one fits. Fetching missing issuers over AIA is the
caller's job; it passes what it fetched as ``extra``.

Path building is the CPU-bound step a hostile host controls (69 certificates that sign
each other make thousands of candidate paths and signature checks): it considers at
most :data:`MAX_POOL_CERTIFICATES` certificates besides the leaf and
:data:`MAX_CANDIDATES_PER_NAME` issuers with one name, and checks a
:class:`~rdptrust.pki.budget.WorkBudget` (deadline, signature checks, explored paths)
between steps; when a limit stops it, the best path found so far is returned and
``ChainPath.limited`` says which limit.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from rdptrust.errors import PkiError
from rdptrust.pki.budget import MAX_EXPLORED_PATHS, WorkBudget
from rdptrust.pki.certfiles import Seen, read_bundle, read_dir, system_paths
from rdptrust.pki.facts import (
    is_self_issued,
    is_self_signed,
    is_signed_by,
    issuer_name,
    load_certificate,
    public_key_sha256,
    subject_name,
)
from rdptrust.pki.tbs import certificate_der

#: A path longer than this is not followed (real chains have 2 to 4 certificates).
MAX_PATH_LENGTH = 10
#: Certificates considered besides the leaf (served and fetched; assumed, see
#: :mod:`rdptrust.pki.budget`): the rest are not looked at.
MAX_POOL_CERTIFICATES = 64
#: Issuer candidates with one subject name tried per certificate (assumed).
MAX_CANDIDATES_PER_NAME = 16


@dataclass(frozen=True)
class TrustAnchors:
    """Certificates trusted as path ends, and where they were read from (paths, ``certifi``)."""

    certificates: tuple[x509.Certificate, ...]
    sources: tuple[str, ...]

    @functools.cached_property
    def _by_subject(self) -> dict[x509.Name, list[x509.Certificate]]:
        index: dict[x509.Name, list[x509.Certificate]] = {}
        for cert in self.certificates:
            subject = subject_name(cert)
            if subject is not None:
                index.setdefault(subject, []).append(cert)
        return index

    @functools.cached_property
    def ders(self) -> frozenset[bytes]:
        """The anchors' DER encodings (computed once per set of anchors)."""
        return frozenset(_der(cert) for cert in self.certificates)

    def with_subject(self, name: x509.Name) -> tuple[x509.Certificate, ...]:
        """Anchors whose subject is *name*."""
        return tuple(self._by_subject.get(name, ()))

    def anchor_for(self, cert: x509.Certificate) -> x509.Certificate | None:
        """The anchor equal to *cert* (same DER, or same subject and public key), or None."""
        subject = subject_name(cert)
        candidates = self.with_subject(subject) if subject is not None else ()
        if not candidates:
            return None
        for anchor in candidates:
            if anchor == cert:
                return anchor
        key = _safe_key_hash(cert)
        for anchor in candidates:
            if key is not None and _safe_key_hash(anchor) == key:
                return anchor
        return None

    def __len__(self) -> int:
        return len(self.certificates)


def load_trust_anchors(
    *,
    system: bool = True,
    ca_files: Sequence[Path] = (),
    ca_dirs: Sequence[Path] = (),
) -> TrustAnchors:
    """Read trusted certificates from the system store and the files and directories given.

    The system store is whatever of OpenSSL's default CA file, CA directory and
    certifi's bundle exists; missing system paths are skipped. A file or directory the
    user names must be readable and hold at least one certificate, else PkiError.

    The anchors of the same files, unchanged since (each file's and each directory
    entry's size, modification time and inode), are read once per process and shared,
    their index with them: a program that diagnoses host after host does not parse the
    system store each time. A changed, added or removed file is read again.
    """
    paths = tuple(system_paths()) if system else ()
    files = tuple(Path(f) for f in ca_files)
    dirs = tuple(Path(d) for d in ca_dirs)
    stamps = (_stamps(paths), _stamps(files), _stamps(dirs))
    return _load_trust_anchors(paths, files, dirs, stamps)


#: The stat of a file, or of a directory and every entry in it (None: missing).
_Stamp = tuple[str, "tuple[int, int, int] | None", tuple[tuple[str, int, int, int], ...]]


def _stat(path: str) -> tuple[int, int, int, bool] | None:
    """Size, modification time and inode of *path* (followed), and whether it is a
    directory; None when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino, stat.S_ISDIR(st.st_mode))


def _stamps(paths: Iterable[Path]) -> tuple[_Stamp, ...]:
    stamps: list[_Stamp] = []
    for path in paths:
        own = _stat(str(path))
        entries: list[tuple[str, int, int, int]] = []
        if own is not None and own[3]:
            try:
                with os.scandir(path) as listing:
                    for entry in listing:
                        found = _stat(entry.path)  # a hash link: its target's stat
                        if found is not None:
                            entries.append((entry.name, *found[:3]))
            except OSError:
                pass
        stamps.append((str(path), own[:3] if own is not None else None, tuple(sorted(entries))))
    return tuple(stamps)


#: Sets of trust anchors kept (a program that changes its CA files often keeps the last few).
ANCHOR_CACHE_SIZE = 8


@functools.lru_cache(maxsize=ANCHOR_CACHE_SIZE)
def _load_trust_anchors(
    system_store: tuple[Path, ...],
    ca_files: tuple[Path, ...],
    ca_dirs: tuple[Path, ...],
    stamps: object,
) -> TrustAnchors:
    # *stamps* only keys the cache: files changed since are read again
    del stamps
    certificates: dict[bytes, x509.Certificate] = {}
    sources: list[str] = []

    def add(found: Iterable[x509.Certificate], source: str) -> None:
        count = 0
        for cert in found:
            certificates.setdefault(_der(cert), cert)
            count += 1
        if count and source not in sources:
            sources.append(source)

    if system_store:
        # The system paths hold the same certificates several times over (a bundle, a
        # directory of the same files and their hash links, certifi): each file and
        # each PEM block is read once.
        seen = Seen()
        for path in system_store:
            skipped = seen.skipped
            if path.is_dir():
                add(read_dir(path, strict=False, seen=seen), str(path))
            elif path.is_file():
                add(read_bundle(path, strict=False, seen=seen), str(path))
            if seen.skipped > skipped and str(path) not in sources:
                sources.append(str(path))  # it holds certificates, read from another path
    for file in ca_files:
        found = read_bundle(file, strict=True)
        if not found:
            raise PkiError(f"{file}: holds no certificate (expected PEM or DER)")
        add(found, str(file))
    for directory in ca_dirs:
        found = read_dir(directory, strict=True)
        if not found:
            raise PkiError(f"{directory}: holds no certificate files")
        add(found, str(directory))
    return TrustAnchors(tuple(certificates.values()), tuple(sources))


def anchors_from_der(
    certificates: Iterable[bytes], source: str, base: TrustAnchors | None = None
) -> TrustAnchors:
    """*base* (if any) and the DER *certificates* as trust anchors, *source* naming them.

    Every certificate must decode, else PkiError naming its position: a trust store
    handed over whole (a client's Root store) is not read by halves.
    """
    found: dict[bytes, x509.Certificate] = (
        {_der(c): c for c in base.certificates} if base is not None else {}
    )
    sources = list(base.sources) if base is not None else []
    count = 0
    for index, der in enumerate(certificates):
        try:
            cert = load_certificate(der)
        except PkiError as exc:
            raise PkiError(f"{source}: certificate {index + 1} is unreadable ({exc})") from exc
        found.setdefault(_der(cert), cert)
        count += 1
    if count and source not in sources:
        sources.append(source)
    return TrustAnchors(tuple(found.values()), tuple(sources))


@dataclass(frozen=True)
class ChainPath:
    """The certification path built for a served chain.

    ``certificates`` runs from the leaf, each signed by the next (signatures checked);
    it is empty when nothing was served. ``anchor`` is the trusted certificate the path
    ends in, None when the path reaches no trust anchor. ``complete`` is True when the
    path ends in a self-signed certificate, trusted or not. ``missing_issuer`` is the
    issuer name of the last certificate when the path stops because no certificate
    among the served, extra and anchors is that issuer (None when the path ends in a
    self-signed certificate or an anchor, or when that issuer name itself cannot be
    decoded); ``missing_issuer_urls`` are that last
    certificate's caIssuers URLs, where Windows would fetch the missing issuer.
    ``unused`` are served certificates that are not on the path. ``limited`` says which
    work limit stopped the search before every candidate was tried (the path is then
    the best found so far); None when the search was complete.
    """

    certificates: tuple[x509.Certificate, ...]
    anchor: x509.Certificate | None
    complete: bool
    missing_issuer: x509.Name | None
    missing_issuer_urls: tuple[str, ...]
    root_self_signed_untrusted: bool
    unused: tuple[x509.Certificate, ...] = field(default=())
    limited: str | None = None

    @property
    def trusted(self) -> bool:
        return self.anchor is not None


def build_path(
    served: Sequence[x509.Certificate],
    anchors: TrustAnchors,
    extra: Sequence[x509.Certificate] = (),
    *,
    budget: WorkBudget | None = None,
) -> ChainPath:
    """Build the path from ``served[0]`` (the leaf) towards a trust anchor.

    The rest of *served* may be in any order, hold duplicates or unrelated
    certificates; *extra* adds certificates found elsewhere (AIA fetches). Among
    possible paths the first that ends in an anchor wins, then one that ends in a
    self-signed certificate, then the one that gets furthest; shorter beats longer.
    *budget* bounds the work (default: a fresh :class:`WorkBudget` without deadline).
    """
    if not served:
        return ChainPath((), None, False, None, (), False)
    budget = budget if budget is not None else WorkBudget()
    leaf = served[0]
    # The anchors are indexed once per set (TrustAnchors caches it); only the served
    # and fetched certificates are indexed per path.
    pool: list[x509.Certificate] = []
    anchored = anchors.ders
    seen: set[bytes] = {_der(leaf)}
    left_out = 0
    for cert in (*served[1:], *extra):
        der = _der(cert)
        if der not in seen and der not in anchored:
            seen.add(der)
            if len(pool) < MAX_POOL_CERTIFICATES:
                pool.append(cert)
            else:
                left_out += 1
    builder = _PathBuilder(pool, anchors, budget)
    path = builder.best(leaf)
    limited = budget.stopped or builder.limited
    if left_out:
        limited = (
            f"{left_out} certificates beyond the first {MAX_POOL_CERTIFICATES} were not "
            "considered" + (f"; {limited}" if limited else "")
        )
    return _chain_path(path, anchors, served, limited)


class _PathBuilder:
    def __init__(
        self, pool: list[x509.Certificate], anchors: TrustAnchors, budget: WorkBudget
    ) -> None:
        self._anchors = anchors
        self._budget = budget
        self._by_subject: dict[x509.Name, list[x509.Certificate]] = {}
        for cert in pool:
            subject = subject_name(cert)
            if subject is not None:  # an unreadable name cannot be anybody's issuer
                self._by_subject.setdefault(subject, []).append(cert)
        # Per certificate (by identity; the pool holds each once): DER, whether it ends
        # a path, and the issuers that verify it, each computed once.
        self._ders: dict[int, bytes] = {}
        self._ends_at: dict[int, tuple[bool, bool]] = {}
        self._issuers_of: dict[int, list[x509.Certificate]] = {}
        self._explored = 0
        self.limited: str | None = None

    def _der(self, cert: x509.Certificate) -> bytes:
        key = id(cert)
        der = self._ders.get(key)
        if der is None:
            der = self._ders[key] = _der(cert)
        return der

    def _issuers(self, cert: x509.Certificate) -> list[x509.Certificate]:
        cached = self._issuers_of.get(id(cert))
        if cached is not None:
            return cached
        found: list[x509.Certificate] = []
        issuer = issuer_name(cert)
        if issuer is not None:
            # anchors first, as they were first in the pool
            candidates = (*self._anchors.with_subject(issuer), *self._by_subject.get(issuer, ()))
            if len(candidates) > MAX_CANDIDATES_PER_NAME:
                self.limited = (
                    f"{len(candidates)} candidate issuers share one name; the first "
                    f"{MAX_CANDIDATES_PER_NAME} were tried"
                )
                candidates = candidates[:MAX_CANDIDATES_PER_NAME]
            for candidate in candidates:
                if candidate is cert or not self._budget.signature():
                    continue
                if is_signed_by(cert, candidate):
                    found.append(candidate)
        if self._budget.stopped is None:  # a list cut short is not remembered
            self._issuers_of[id(cert)] = found
        return found

    def best(self, leaf: x509.Certificate) -> list[x509.Certificate]:
        best: list[x509.Certificate] = [leaf]
        best_rank = self._rank(best)
        stack: list[list[x509.Certificate]] = [[leaf]]
        while stack and self._budget.ok():
            if self._explored >= MAX_EXPLORED_PATHS:
                self.limited = f"{MAX_EXPLORED_PATHS} candidate paths were explored"
                break
            path = stack.pop()
            self._explored += 1
            rank = self._rank(path)
            if rank > best_rank:
                best, best_rank = path, rank
            last = path[-1]
            if self._ends(last) or len(path) >= MAX_PATH_LENGTH:
                continue
            ders = {self._der(c) for c in path}
            # Pushed in reverse so that anchors (first in the pool) are tried first.
            for issuer in reversed(self._issuers(last)):
                if self._der(issuer) not in ders:
                    stack.append([*path, issuer])
        return best

    def _end_kind(self, cert: x509.Certificate) -> tuple[bool, bool]:
        """(is an anchor, is self-signed), computed once per certificate."""
        key = id(cert)
        kind = self._ends_at.get(key)
        if kind is None:
            anchor = self._anchors.anchor_for(cert) is not None
            own = False
            if not anchor and is_self_issued(cert):
                own = self._budget.signature() and is_self_signed(cert)
            kind = self._ends_at[key] = (anchor, own)
        return kind

    def _ends(self, cert: x509.Certificate) -> bool:
        anchor, own = self._end_kind(cert)
        return anchor or own

    def _rank(self, path: list[x509.Certificate]) -> tuple[int, int]:
        anchor, own = self._end_kind(path[-1])
        if anchor:
            return (3, -len(path))
        if own:
            return (2, -len(path))
        return (1, len(path))


def _chain_path(
    path: list[x509.Certificate],
    anchors: TrustAnchors,
    served: Sequence[x509.Certificate],
    limited: str | None,
) -> ChainPath:
    last = path[-1]
    anchor = anchors.anchor_for(last)
    complete = is_self_signed(last)
    missing: x509.Name | None = None
    urls: tuple[str, ...] = ()
    if anchor is None and not complete:
        missing = issuer_name(last)
        urls = _ca_issuers_urls(last)
    on_path = {_der(c) for c in path}
    unused: list[x509.Certificate] = []
    for cert in served:
        der = _der(cert)
        if der not in on_path:
            on_path.add(der)
            unused.append(cert)
    return ChainPath(
        certificates=tuple(path),
        anchor=anchor,
        complete=complete,
        missing_issuer=missing,
        missing_issuer_urls=urls,
        root_self_signed_untrusted=complete and anchor is None,
        unused=tuple(unused),
        limited=limited,
    )


def _ca_issuers_urls(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except Exception:  # absent or undecodable: nowhere to fetch from
        return ()
    return tuple(
        d.access_location.value
        for d in aia
        if d.access_method == x509.oid.AuthorityInformationAccessOID.CA_ISSUERS
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    )


_der = certificate_der


def _safe_key_hash(cert: x509.Certificate) -> str | None:
    try:
        return public_key_sha256(cert)
    except PkiError:
        return None
