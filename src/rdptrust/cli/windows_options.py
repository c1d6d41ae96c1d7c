"""The options of the modelled Windows client shared by diagnose, check and scan."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from rdptrust.cli.common import FiniteRange, UrlType
from rdptrust.cli.directory_options import directory_options
from rdptrust.model.windows import ClientProfile, RevocationRegime

F = TypeVar("F", bound=Callable[..., Any])

HELP_EXAMPLES = """\
  --revocation-timeouts per-url    model revocation without the accumulative flag
  --disallowed-update off --client win10   as if EnableDisallowedCertAutoUpdate=0
  --ctl-due no                     the clients' cached lists are fresh (no sync)
  --crl-first on                   the client prefers CRLs (50 cached OCSP answers per CA,
                                   or the GPO option CRYPTNET_CRL_BEFORE_OCSP_ENABLE)
  --domain corp.example            read ldap:/// CRL and AIA URLs from corp.example's DCs
  --domain lab.test --dns-server 127.0.0.1:5353   ask that DNS server for the DCs"""


@dataclass(frozen=True)
class WindowsModelChoice:
    """What the user chose for the modelled client's list syncs and revocation regime."""

    revocation_timeouts: RevocationRegime
    disallowed_update: bool
    ctl_due: bool
    client: ClientProfile
    root_dir_url: str | None
    crl_first: bool = False
    domain: str | None = None
    dns_server: str | None = None
    list_timeout: float = 15.0

    def settings_fields(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~rdptrust.model.windows.WindowsSettings`."""
        return {
            "revocation_timeouts": self.revocation_timeouts,
            "disallowed_update": self.disallowed_update,
            "ctl_due": self.ctl_due,
            "client": self.client,
            "root_dir_url": self.root_dir_url,
            "ocsp_first": not self.crl_first,
            "domain": self.domain,
            "dns_server": self.dns_server,
            "list_timeout_s": self.list_timeout,
        }


_KEYS = (
    "revocation_timeouts",
    "disallowed_update",
    "ctl_due",
    "client",
    "root_dir_url",
    "crl_first",
    "domain",
    "dns_server",
    "list_timeout",
)


def windows_model_options(command: F) -> F:
    """Add the model's options; the command receives them as ``windows_model``."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        choice = WindowsModelChoice(
            revocation_timeouts=RevocationRegime(kwargs.pop("revocation_timeouts")),
            disallowed_update=kwargs.pop("disallowed_update") == "on",
            ctl_due=kwargs.pop("ctl_due") == "yes",
            client=ClientProfile(kwargs.pop("client")),
            root_dir_url=kwargs.pop("root_dir_url"),
            crl_first=kwargs.pop("crl_first") == "on",
            domain=kwargs.pop("domain"),
            dns_server=kwargs.pop("dns_server"),
            list_timeout=kwargs.pop("windows_list_timeout"),
        )
        return command(*args, windows_model=choice, **kwargs)

    options = (
        click.option(
            "--revocation-timeouts",
            type=click.Choice([r.value for r in RevocationRegime]),
            default=RevocationRegime.BOTH.value,
            show_default=True,
            help="Revocation time-out regime: accumulative (half the remaining 20 s per URL),"
            " per-url (15 s each, no cap) or both (a range: which mstsc uses is undocumented).",
        ),
        click.option(
            "--disallowed-update",
            type=click.Choice(["on", "off"]),
            default="on",
            show_default=True,
            help="Model the untrusted (disallowed) list and pin rules sync on or off"
            " (off = EnableDisallowedCertAutoUpdate=0; Windows 8.1 and later).",
        ),
        click.option(
            "--ctl-due",
            type=click.Choice(["yes", "no"]),
            default="yes",
            show_default=True,
            help="Whether the clients' cached trust lists are due for a sync (yes: as on a"
            " network where the sync never succeeds).",
        ),
        click.option(
            "--client",
            type=click.Choice([c.value for c in ClientProfile]),
            default=ClientProfile.WIN10.value,
            show_default=True,
            help="The Windows client modelled: win7, win8.1 or win10 (Windows 10/11).",
        ),
        click.option(
            "--root-dir-url",
            type=UrlType(),
            default=None,
            help="Model a RootDirUrl mirror: the trust lists are fetched from this folder URL.",
        ),
        click.option(
            "--crl-first",
            type=click.Choice(["on", "off"]),
            default="off",
            show_default=True,
            help="Model the client preferring the CRL over OCSP, as Windows does after 50"
            " cached OCSP answers for one CA or with CRYPTNET_CRL_BEFORE_OCSP_ENABLE (GPO);"
            " off: OCSP first, then the CRL.",
        ),
        click.option(
            "--windows-list-timeout",
            type=FiniteRange(min=0.1, max=600),
            default=15.0,
            show_default=True,
            help="What one blocked trust-list fetch (root, disallowed, pin rules) costs in the"
            " model: field reports say about 15 s; no document ties it to the per-URL"
            " time-out, so it is an assumption of its own.",
        ),
        *directory_options(),
    )
    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]
