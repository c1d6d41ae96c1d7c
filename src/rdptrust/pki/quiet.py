"""Quiet parsing: cryptography's warnings about odd but readable certificates, silenced.

One context manager, :class:`quiet_parsing`, around every parse of host-supplied bytes.
"""

from __future__ import annotations

import threading
import warnings

from cryptography.utils import CryptographyDeprecationWarning


class quiet_parsing:
    """Silence the warnings cryptography gives about odd but readable certificates.

    These are its deprecation warnings (negative serials, unusual encodings) and the
    ``UserWarning`` it raises whenever it decodes a name whose attribute is longer or
    shorter than RFC 5280's upper bounds allow (a common name over 64 characters, a
    three-letter country). Windows reads such names; for rdptrust they are text to
    show, and a warning with its source line on standard error would be a leak of the
    library's internals.

    Entering it makes sure two narrow filters are in the process' warning filters:
    cryptography's deprecation warnings raised from rdptrust's own code, and that one
    name-length message. They are installed once (and again after something such as
    ``warnings.resetwarnings`` removed them), never swapped in and out per call: the
    filter list is process-wide, so swapping it is neither cheap nor safe from the
    worker threads that judge certificates (:mod:`rdptrust.engine.cpu`).
    """

    def __enter__(self) -> None:
        filters = warnings.filters
        if _INSTALLED[0] is not filters or _INSTALLED[1] != len(filters):
            _install_filters()

    def __exit__(self, *exc: object) -> None:
        return None


def _install_filters() -> None:
    """Put the filters first in the current filter list (again: ``filterwarnings`` moves
    an equal filter to the front rather than adding a second one)."""
    with _INSTALL_LOCK:
        for category, message, module in _QUIET:
            warnings.filterwarnings("ignore", message, category, module)
        _INSTALLED[:] = [warnings.filters, len(warnings.filters)]


#: The text of cryptography's warning for a name attribute outside its length bounds
#: (cryptography/x509/name.py, ``NameAttribute.__init__``).
_NAME_LENGTH_WARNING = r"Attribute's length must be >= \d+ and <= \d+"
#: (category, message pattern, module pattern) of each warning :class:`quiet_parsing` silences.
_QUIET: tuple[tuple[type[Warning], str, str], ...] = (
    (CryptographyDeprecationWarning, "", r"(rdptrust|cryptography)(\.|$)"),
    (UserWarning, _NAME_LENGTH_WARNING, ""),
)
#: The filter list the filters were last installed in and its length then: a new list
#: (``catch_warnings``) or another length (``resetwarnings``, a filter added) means again.
_INSTALLED: list[object] = [None, -1]
_INSTALL_LOCK = threading.Lock()
