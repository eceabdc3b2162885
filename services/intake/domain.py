"""Intake: a participant's case: referral, triage, coordinator, dropout and closing.

Intake takes these events as facts and checks nothing beyond the contract's validation:
an unassignment of a coordinator who was already replaced is harmless, and whether a
journey is open is the outcomes service's judgement, made on both times of every fact.
"""

from __future__ import annotations

from services.kernel.source import SourceRecord


class Participant(SourceRecord):
    """Every intake event accepted about one participant."""
