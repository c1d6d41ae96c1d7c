"""``--pac FILE|URL``, ``--wpad`` and ``--wpad-domain``: the proxy path WinHTTP would find.

Shared by diagnose, check and scan (with ``--diagnose``), beside their ``--proxy``.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from rdptrust.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

PAC_HELP = (
    "Find each retrieval's proxy with this PAC script (a file, or an http(s) URL that is "
    "downloaded and timed), as WinHTTP's auto-config does."
)
WPAD_HELP = (
    "Find the proxy by WPAD first, as 'Automatically detect settings' does: DNS "
    "wpad.<domain> (then its parents), then GET http://wpad.<domain>/wpad.dat; the time "
    "it takes is a wait of its own (DHCP is not tried)."
)
WPAD_DOMAIN_HELP = "The clients' DNS domain for --wpad [default: this machine's DNS domain]."
HELP_EXAMPLES = """\
  --pac http://pac.corp.example/proxy.pac   the proxy the PAC script picks per URL
  --wpad --wpad-domain corp.example         WPAD discovery for corp.example first"""


@dataclass(frozen=True)
class AutoProxyChoice:
    """What the user chose: a PAC script, WPAD discovery and its domain."""

    pac: str | None
    wpad: bool
    wpad_domain: str | None

    def options_fields(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~rdptrust.engine.options.AssessOptions`."""
        return {"pac": self.pac, "wpad": self.wpad, "wpad_domain": self.wpad_domain}


def own_domain() -> str | None:
    """This machine's DNS domain (its FQDN less the first label), None when it has none."""
    name = socket.getfqdn()
    _, dot, domain = name.partition(".")
    return domain if dot and domain and domain != "localdomain" else None


def choose(
    pac: str | None, wpad: bool, wpad_domain: str | None, proxy: str | None
) -> AutoProxyChoice:
    """The choice, checked: a one-line usage error for what cannot go together."""
    if proxy is not None and (pac is not None or wpad):
        raise UsageError("--proxy and --pac/--wpad exclude each other")
    if wpad_domain is not None and not wpad:
        raise UsageError("--wpad-domain needs --wpad")
    domain = wpad_domain
    if wpad and domain is None:
        domain = own_domain()
        if domain is None:
            raise UsageError("--wpad needs a domain: this machine has none, give --wpad-domain")
    if domain is not None:
        domain = domain.strip(".").lower()
        labels = domain.split(".")
        if not domain or any(
            not label or len(label) > 63 or not all(c.isalnum() or c == "-" for c in label)
            for label in labels
        ):
            raise UsageError(f"--wpad-domain: not a DNS domain: {wpad_domain!r}")
    if pac is not None and not pac.lower().startswith(("http://", "https://")):
        from rdptrust.net.autoproxy import read_pac_file

        read_pac_file(Path(pac))  # a file that cannot be read or evaluated: exit 64 now
    return AutoProxyChoice(pac, wpad, domain)


def autoproxy_options(command: F) -> F:
    """Add --pac, --wpad and --wpad-domain; the command receives them as ``autoproxy``
    (checked against its ``proxy``)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        choice = choose(
            kwargs.pop("pac"), kwargs.pop("wpad"), kwargs.pop("wpad_domain"), kwargs.get("proxy")
        )
        return command(*args, autoproxy=choice, **kwargs)

    options = (
        click.option("--pac", default=None, metavar="FILE|URL", help=PAC_HELP),
        click.option("--wpad", is_flag=True, help=WPAD_HELP),
        click.option("--wpad-domain", default=None, metavar="DOMAIN", help=WPAD_DOMAIN_HELP),
    )
    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]
