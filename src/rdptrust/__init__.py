"""rdptrust: find and fix the Remote Desktop "Securing remote connection" stall."""

from __future__ import annotations

__version__ = "0.1.0"
