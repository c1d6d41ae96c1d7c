"""Site names: where a scan ran, the network whose clients it speaks for."""

from __future__ import annotations

import re

from rdptrust.errors import UsageError

#: A site name: letters, digits, '.', '_', '-' (a host name, an office code, "branch-2").
SITE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def parse_site(text: str) -> str:
    """*text* as a site name; UsageError with what is allowed when it is not one."""
    if SITE_PATTERN.fullmatch(text) is None:
        raise UsageError(
            f"{text!r} is not a site name: use 1 to 63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return text
