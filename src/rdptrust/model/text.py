"""Text from the network made inert before it reaches a terminal, a plugin line or a log.

A host or responder chooses its URLs, certificate subjects and NTLM names. Written raw,
``ESC ] 0 ;`` retitles the window, ``ESC [ 2K`` erases the line a user reads, ``CR``
overwrites it, and a right-to-left override (U+202E) makes ``gpj.exe`` read as
``exe.jpg``. Every such character is written as a visible escape instead: ``\\x1b``,
``\\r``, ``\\u202e``. Printable text, including non-Latin letters, is left as it is.
"""

from __future__ import annotations

import re

#: Bidirectional formatting characters (Unicode UAX #9): embeddings and overrides
#: U+202A..U+202E, isolates U+2066..U+2069, the marks U+200E/U+200F and U+061C.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"

#: C0 controls, DEL, C1 controls (U+0080..U+009F: 0x9B is a one-byte CSI) and bidi controls;
#: plus the line and paragraph separators that some terminals treat as a newline.
_UNSAFE = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f\u2028\u2029{BIDI_CONTROLS}]")
#: The same set less newline and tab: the layout of rdptrust's own multi-line output.
_UNSAFE_IN_LAYOUT = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\u2028\u2029{BIDI_CONTROLS}]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: str) -> str:
    """*text* on one line with every control and bidi character visibly escaped.

    For one value from the network (a URL, a name, a subject): newlines are escaped too,
    so a value cannot start a line of its own.
    """
    return _UNSAFE.sub(_visible, text)


def safe_output(text: str) -> str:
    """*text*, a whole block of output, with controls escaped except newline and tab."""
    return _UNSAFE_IN_LAYOUT.sub(_visible, text)


def has_unsafe(text: str) -> bool:
    """Whether *text* holds a character :func:`safe_text` would escape."""
    # Every escaped character is a control (Cc), a format character (Cf: the bidi
    # controls) or a line or paragraph separator, none of them printable: a printable
    # text, the usual case, needs no search.
    return not text.isprintable() and _UNSAFE.search(text) is not None


def has_unsafe_layout(text: str) -> bool:
    """Whether *text* holds a character :func:`safe_output` would escape."""
    return not text.isprintable() and _UNSAFE_IN_LAYOUT.search(text) is not None


#: ``scheme://user:password@`` in a URL, anywhere in a text.
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/?#@:]*):[^\s/?#@]*@")


def redact_url(url: str) -> str:
    """*url* with the password of its user information shown as ``***``.

    ``http://user:secret@host/roots.stl`` becomes ``http://user:***@host/roots.stl``; a
    URL without a password is returned as it is.
    """
    return redact_credentials(url)


def redact_credentials(text: str) -> str:
    """*text* with the password of every URL in it shown as ``***``."""
    return _URL_PASSWORD.sub(r"\1:***@", text)
