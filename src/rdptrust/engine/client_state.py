"""Judge with a Windows client's own stores and policy: the client-state mapping.

:func:`load_client_state` reads an ``rdptrust.client-state/1`` file;
:func:`options_with_client_state` turns assessment options into the same options as
that client would judge with (WINDOWS.md §2, §3, §6):

- trust anchors: the client's Root and AuthRoot stores (Group Policy's roots are in
  Root), plus any ``ca_files``/``ca_dirs`` the options name; this machine's store is
  not used;
- ``intermediates``: its CA store, for path building; ``disallowed``: its Disallowed
  store (a chain holding one is distrusted);
- Windows settings: ``root_update`` off when ``DisableRootAutoUpdate`` is set,
  ``disallowed_update`` off when ``EnableDisallowedCertAutoUpdate`` is 0, the per-URL
  and accumulated revocation time-outs from ChainEngine\\Config, ``root_dir_url`` and
  the client profile; ``ctl_due`` from the cached CTL's ``LastSyncTime``;
- ``root_list_url``: ``<RootDirUrl>/authrootstl.cab`` when RootDirUrl is HTTP(S);
- ``proxy``: WinHTTP's static proxy for ``http://`` URLs.

A policy the client does not set takes Windows' default, not this machine's flags.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

from rdptrust.engine import client_live
from rdptrust.engine.options import AssessOptions
from rdptrust.errors import DataError, PkiError
from rdptrust.model.client_state import ClientState, WinHttpProxy, parse_client_state
from rdptrust.model.windows import WindowsSettings
from rdptrust.pki.facts import load_certificate
from rdptrust.pki.trust import TrustAnchors, anchors_from_der, load_trust_anchors

#: Largest client-state file read (a Root store of a few hundred certificates is ~1 MB).
MAX_CLIENT_STATE_BYTES = 64 << 20
#: How long a synced CTL stays fresh: daily for connected machines (WINDOWS.md §2, SDK
#: ``SyncDeltaTime``; documented).
CTL_SYNC_INTERVAL = dt.timedelta(days=1)
ROOT_LIST_FILE = "authrootstl.cab"


def read_client_state(data: bytes, where: str) -> ClientState:
    """The client state in *data* (the file's bytes); DataError for anything malformed.

    Beyond the document's shape, every certificate of every store must decode.
    """
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise DataError(f"{where}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{where}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    state = parse_client_state(document, where)
    for name, ders in (
        ("root", state.roots),
        ("authroot", state.authroot),
        ("ca", state.intermediates),
        ("disallowed", state.disallowed),
    ):
        for index, der in enumerate(ders):
            try:
                load_certificate(der)
            except PkiError as exc:
                raise DataError(f"{where}: stores.{name}[{index}] is unreadable ({exc})") from None
    return state


def load_client_state(path: Path) -> ClientState:
    """Read the client-state file at *path*: DataError when it is malformed or too
    large; OSError when it cannot be read."""
    with path.open("rb") as handle:
        data = handle.read(MAX_CLIENT_STATE_BYTES + 1)
    if len(data) > MAX_CLIENT_STATE_BYTES:
        raise DataError(f"{path}: larger than {MAX_CLIENT_STATE_BYTES} bytes")
    return read_client_state(data, str(path))


def proxy_url(proxy: WinHttpProxy) -> str | None:
    """The URL of the proxy WinHTTP uses for ``http://`` retrievals, or None (direct).

    ``host:port`` serves every scheme; ``http=host:port;https=…`` names one per scheme
    (netsh's syntax), and CRL, OCSP, AIA and CTL URLs are ``http://``.
    """
    if proxy.server is None:
        return None
    chosen: str | None = None
    for entry in (e.strip() for e in proxy.server.replace(" ", ";").split(";")):
        if not entry:
            continue
        scheme, sep, address = entry.partition("=")
        if not sep:
            chosen = chosen or entry
        elif scheme.strip().lower() == "http":
            chosen = address.strip()
            break
    if not chosen:
        return None
    return chosen if "://" in chosen else f"http://{chosen}"


def ctl_due(state: ClientState, now: dt.datetime) -> bool:
    """Whether the cached trusted-root CTL is due for a sync at *now*: no CTL cached, no
    recorded sync, or the last sync a day or more ago."""
    if not state.authroot_ctl_present or state.authroot_last_sync is None:
        return True
    return now - state.authroot_last_sync >= CTL_SYNC_INTERVAL


def root_list_url(state: ClientState, default: str) -> str:
    """Where the client fetches the root list: its RootDirUrl mirror when that is HTTP(S)."""
    base = state.root_dir_url
    if base is None or not base.lower().startswith(("http://", "https://")):
        return default
    return base.rstrip("/") + "/" + ROOT_LIST_FILE


def client_anchors(
    state: ClientState, ca_files: Sequence[Path] = (), ca_dirs: Sequence[Path] = ()
) -> TrustAnchors:
    """The client's Root and AuthRoot stores, with *ca_files*/*ca_dirs* added (a what-if:
    "had the clients this CA too"); PkiError when one of those is unreadable."""
    extra = load_trust_anchors(system=False, ca_files=ca_files, ca_dirs=ca_dirs)
    return anchors_from_der(
        (*state.roots, *state.authroot), "the client's Root and AuthRoot stores", extra
    )


def client_state_for(path: Path | None, *, live: bool) -> ClientState | None:
    """The client state to judge with: the file at *path*, else with *live* this
    Windows machine's own (None elsewhere), else None (this machine's OpenSSL trust)."""
    if path is not None:
        return load_client_state(path)
    if live and client_live.is_windows():
        return client_live.read_live_client_state()
    return None


def options_with_client_state(
    options: AssessOptions, state: ClientState, *, anchors: TrustAnchors | None = None
) -> AssessOptions:
    """*options* as the client described by *state* would judge (see the module docstring).

    *anchors* are :func:`client_anchors` made beforehand (a fleet loads them once);
    without them they are made here, and PkiError says a ``ca_files``/``ca_dirs`` entry
    of *options* is unreadable.
    """
    # 0 ms, like an absent value, is Windows' default (CERT_CHAIN_PARA: 0 = default)
    defaults = WindowsSettings()
    now = options.now or dt.datetime.now(dt.UTC)
    windows = dataclasses.replace(
        options.windows,
        url_timeout_s=(
            state.url_retrieval_timeout_ms / 1000.0
            if state.url_retrieval_timeout_ms
            else defaults.url_timeout_s
        ),
        revocation_timeout_s=(
            state.rev_accumulative_timeout_ms / 1000.0
            if state.rev_accumulative_timeout_ms
            else defaults.revocation_timeout_s
        ),
        root_update=not state.disable_root_auto_update,
        disallowed_update=state.enable_disallowed_cert_auto_update is not False,
        ctl_due=ctl_due(state, now if now.tzinfo else now.replace(tzinfo=dt.UTC)),
        client=state.client,
        root_dir_url=state.root_dir_url,
    )
    if anchors is None:
        anchors = client_anchors(state, options.ca_files, options.ca_dirs)
    static = proxy_url(state.proxy)
    # WinHTTP takes its static proxy before any auto-configuration (WINDOWS.md §6)
    auto = {"pac": None, "wpad": False, "wpad_domain": None} if static else {}
    return dataclasses.replace(
        options,
        windows=windows,
        root_list_url=root_list_url(state, options.root_list_url),
        system_trust=False,
        anchors=anchors,
        intermediates=state.intermediates,
        disallowed=frozenset(state.disallowed),
        proxy=static,
        proxy_bypass=state.proxy.bypass if static else None,
        **auto,  # type: ignore[arg-type]
    )
