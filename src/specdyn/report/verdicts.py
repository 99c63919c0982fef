"""Verdicts of the reference study's claims, and the rules that combine several tests into one.

(Module docstring completed below.)
"""

from __future__ import annotations

from enum import Enum


class Verdict(Enum):
    """Outcome of checking one claim on one run."""

    HOLDS = "holds"
    DOES_NOT_HOLD = "does not hold"
    INCONCLUSIVE = "inconclusive at 95%"
    NOT_COMPARABLE = "not comparable"  # literal numbers of another model pair
    NOT_APPLICABLE = "not applicable"  # the run lacks what the claim needs (a chat domain, 2 depths, ...)
