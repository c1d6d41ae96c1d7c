"""Runs an assessment of one host (probe, retrievals, judgement) and the fleet scan."""

from __future__ import annotations

from rdptrust.engine.assess import assess, assess_probe
from rdptrust.engine.options import AssessOptions

__all__ = ["AssessOptions", "assess", "assess_probe"]
