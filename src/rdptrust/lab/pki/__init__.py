"""The lab's PKI responders: root list, AIA, CRL and OCSP on one small HTTP server.

These are the URLs the Windows chain engine fetches while a user looks at "Securing
remote connection" (PROTOCOL.md §5). Each purpose has a :class:`ResponderMode`, so the
lab can answer, answer late, never answer, refuse the connection, say 404, or send
rubbish:

============  ========================================================================
mode          on the wire
============  ========================================================================
ok            the real content (below)
delay:S       the real content after S seconds
blackhole     the TCP connection is accepted and the request read; no answer ever
              comes, the connection is held until the client leaves or the server stops
refuse        the purpose's URLs point at a port with a bound, non-listening socket, so
              the TCP connect is refused (``ECONNREFUSED``)
404           ``404 Not Found``
garbage       ``200 OK`` with the usual content type and bytes that are no valid content
gzip-bomb     ``200 OK`` with ``Content-Encoding: gzip, gzip``: a few KiB that inflate to
              2 GiB of zeros for a client that decodes (CryptoAPI does not)
get-only      ``405`` to a ``POST`` (an OCSP responder that takes only GET)
post-only     ``405`` to a ``GET`` (an OCSP responder that takes only POST)
huge          ``200 OK`` with 100 MiB + 1 byte of zeros, one byte over Windows'
              ``MaxUrlRetrievalByteCount``
delta         as ``ok``; for ``crl``, host certificates also name the intermediate's
              delta CRL (Freshest CRL), :data:`CRL_DELTA_PATH`, a delta CRL on the last
              full CRL with a Delta CRL Indicator
============  ========================================================================

Paths and content in ``ok`` mode:

- root list (``root_list``): :data:`ROOT_LIST_PATH` and :data:`DISALLOWED_LIST_PATH`, the
  Windows Update paths. Each is a valid, uncompressed Microsoft Cabinet file holding one
  file, ``authroot.stl`` or ``disallowedcert.stl``. Its content is a short placeholder
  text, not a signed certificate trust list: the lab reproduces the fetch and its timing,
  not the trust decision Windows takes from the list.
- AIA (``aia``): :data:`AIA_INTERMEDIATE_PATH` and :data:`AIA_ROOT_PATH`, the issuer
  certificates in DER (``application/pkix-cert``).
- CRL (``crl``): :data:`CRL_INTERMEDIATE_PATH` and :data:`CRL_ROOT_PATH`, a new CRL signed
  by that issuer on every request, listing what the :class:`LabCa` has revoked, in DER
  (``application/pkix-crl``).
- OCSP (``ocsp``): ``POST`` :data:`OCSP_PATH` (``application/ocsp-request``) and
  ``GET /ocsp/<base64 request>`` (RFC 6960 appendix A). The answer is signed by the
  issuer the request names (the intermediate for host certificates, the root for the
  intermediate): ``good``, ``revoked`` with time and reason, or ``unknown`` for a serial
  the issuer never issued; ``unauthorized`` for an issuer that is not the lab's, and
  ``malformedRequest`` for bytes that are no OCSP request. The request's nonce is echoed.

Without a CA (``ca=None``) the AIA, CRL and OCSP paths answer 404 in ``ok`` mode; a CA
can be set later (:attr:`PkiResponder.ca`), since the CA's certificates carry URLs that
exist only once the responder has its port.

Limits: request headers :data:`MAX_HEADER_BYTES`, bodies :data:`MAX_BODY_BYTES`, a
request's head and its body must each arrive within ``request_timeout_s``, at most
``max_connections`` at once (more are closed at once). Every response says
``Connection: close``: each retrieval is a connection of its own. The responder keeps
the last :data:`REQUESTS_KEPT` requests (``requests``) and counts every one by purpose
(``request_counts``).

Modules: :mod:`~rdptrust.lab.pki.modes` (the modes), :mod:`~rdptrust.lab.pki.content`
(what is served: cabinets, certificates, CRLs, OCSP answers) and
:mod:`~rdptrust.lab.pki.responder` (the server, on :mod:`rdptrust.net.httpserver`).
"""

from __future__ import annotations

from rdptrust.lab.pki.content import (
    AIA_INTERMEDIATE_PATH,
    AIA_ROOT_PATH,
    CRL_DELTA_PATH,
    CRL_INTERMEDIATE_PATH,
    CRL_ROOT_PATH,
    DISALLOWED_LIST_PATH,
    GARBAGE,
    OCSP_PATH,
    PLACEHOLDER_STL,
    ROOT_LIST_DIRECTORY,
    ROOT_LIST_PATH,
    build_cabinet,
    cab_checksum,
    ocsp_answer,
    purpose_of,
)
from rdptrust.lab.pki.modes import (
    ALL_OK,
    MAX_DELAY_S,
    OK,
    PURPOSES,
    ModeKind,
    PkiModes,
    Purpose,
    ResponderMode,
)
from rdptrust.lab.pki.responder import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    REQUESTS_KEPT,
    PkiRequest,
    PkiResponder,
)

__all__ = [
    "AIA_INTERMEDIATE_PATH",
    "AIA_ROOT_PATH",
    "ALL_OK",
    "CRL_DELTA_PATH",
    "CRL_INTERMEDIATE_PATH",
    "CRL_ROOT_PATH",
    "DISALLOWED_LIST_PATH",
    "GARBAGE",
    "MAX_BODY_BYTES",
    "MAX_DELAY_S",
    "MAX_HEADER_BYTES",
    "OCSP_PATH",
    "OK",
    "PLACEHOLDER_STL",
    "PURPOSES",
    "REQUESTS_KEPT",
    "ROOT_LIST_DIRECTORY",
    "ROOT_LIST_PATH",
    "ModeKind",
    "PkiModes",
    "PkiRequest",
    "PkiResponder",
    "Purpose",
    "ResponderMode",
    "build_cabinet",
    "cab_checksum",
    "ocsp_answer",
    "purpose_of",
]
