"""The ``rdptrust.client-state/1`` document of a :class:`ClientState`.

The one JSON form; :func:`rdptrust.model.client_state.parse_client_state` reads it back
(a round trip gives the same value). Certificates are base64 DER, as PowerShell writes
them, so the script and the live reader produce the same document.
"""

from __future__ import annotations

import base64
from typing import Any

from rdptrust.model.client_state import SCHEMA, ClientState
from rdptrust.report.jsonform import optional_timestamp


def _ders(ders: tuple[bytes, ...]) -> list[str]:
    return [base64.b64encode(der).decode("ascii") for der in ders]


def client_state_document(state: ClientState) -> dict[str, Any]:
    """The JSON-ready document of *state*."""
    return {
        "schema": SCHEMA,
        "collected_at": optional_timestamp(state.collected_at),
        "os": {"version": state.os_version, "client": state.client.value},
        "stores": {
            "root": _ders(state.roots),
            "authroot": _ders(state.authroot),
            "ca": _ders(state.intermediates),
            "disallowed": _ders(state.disallowed),
        },
        "authroot_ctl": {
            "present": state.authroot_ctl_present,
            "last_sync": optional_timestamp(state.authroot_last_sync),
        },
        "auto_update": {
            "disable_root_auto_update": state.disable_root_auto_update,
            "enable_disallowed_cert_auto_update": state.enable_disallowed_cert_auto_update,
            "root_dir_url": state.root_dir_url,
        },
        "chain_engine": {
            "url_retrieval_timeout_ms": state.url_retrieval_timeout_ms,
            "rev_accumulative_url_retrieval_timeout_ms": state.rev_accumulative_timeout_ms,
        },
        "winhttp_proxy": {"server": state.proxy.server, "bypass": state.proxy.bypass},
    }
