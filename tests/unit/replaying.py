"""Synthetic people and their edge events for the tests of `los replay` (CONTRACT §5).

Day n is n days after day 0, 2025-01-06 09:00 +01:00 (`day`), and `z(n)` spells it as
the output does, in UTC with "Z". A `Person` has a synthetic national id and writes edge
events as JSON lines; `run` replays lines with the test key and the default rules, and
`outline` is what the tests compare of an alert: subject, raised_at, status,
resolved_at, resolution.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import count
from typing import Any

from services.kernel.ids import synthetic_national_id, synthetic_orgnr
from services.kernel.settings import RuleSettings
from services.outcomes.replay import Replay, replay

KEY = "replay-test-key-of-32-bytes-or-more"
CET = timezone(timedelta(hours=1))
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=CET)
RULES = RuleSettings()
TEAM = "nav-0301-grorud"
_event_ids = count(1)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


UNTIL = day(200)


def z(n: float) -> str:
    """Day n as the output spells it: UTC, with "Z"."""
    return (T0 + timedelta(days=n)).astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Person:
    """A synthetic participant, and the organisation that reports about them."""

    national_id: str
    org: str

    @classmethod
    def make(cls, seed: int) -> Person:
        rng = random.Random(seed)
        return cls(synthetic_national_id(rng, date(1990, 5, 17)), synthetic_orgnr(rng))

    @property
    def pseudonym(self) -> str:
        """CONTRACT §5, computed here rather than by the code under test."""
        return hmac.new(KEY.encode(), self.national_id.encode(), hashlib.sha256).hexdigest()

    def event(
        self,
        type_: str,
        data: dict[str, Any],
        at: float,
        recorded: float | None = None,
        event_id: str | None = None,
        system: str = "nav",
    ) -> str:
        return json.dumps(
            {
                "event_id": event_id or str(uuid.UUID(int=next(_event_ids), version=4)),
                "type": type_,
                "occurred_at": day(at).isoformat(),
                "recorded_at": day(at if recorded is None else recorded).isoformat(),
                "source": {"system": system, "org": self.org},
                "person": self.national_id,
                "data": data,
            }
        )

    def referred(self, at: float, org_unit: str = TEAM) -> str:
        return self.event("participant.referred", {"channel": "nav", "org_unit": org_unit}, at)

    def started(self, m: str, at: float, recorded: float | None = None, system: str = "nav") -> str:
        data = {"measure_id": m, "measure_code": "AVKLARING", "provider": self.org}
        return self.event("measure.started", data, at, recorded, system=system)

    def ended(
        self,
        m: str,
        at: float,
        recorded: float | None = None,
        status: str = "FULLFORT",
        reason: str = "FERDIG",
    ) -> str:
        data = {"measure_id": m, "status": status, "reason": reason}
        return self.event("measure.ended", data, at, recorded)

    def assigned(
        self, c: str, at: float, recorded: float | None = None, org_unit: str = TEAM
    ) -> str:
        data = {"coordinator_id": c, "org_unit": org_unit}
        return self.event("coordinator.assigned", data, at, recorded)

    def unassigned(self, c: str, at: float) -> str:
        return self.event("coordinator.unassigned", {"coordinator_id": c, "reason": "moved"}, at)

    def dropped_out(self, at: float) -> str:
        return self.event("participant.dropped_out", {"reason": "LOST_CONTACT"}, at)

    def closed(self, at: float) -> str:
        return self.event("journey.closed", {"reason": "MOVED"}, at)


ANA = Person.make(1)
BO = Person.make(2)


def run(lines: list[str], until: datetime = UNTIL) -> Replay:
    return replay(lines, until, KEY, RULES)


def alerts(lines: list[str], until: datetime = UNTIL) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run(lines, until).alerts]


def outline(alert: dict[str, Any]) -> tuple[Any, ...]:
    return (
        alert["subject"],
        alert["raised_at"],
        alert["status"],
        alert["resolved_at"],
        alert["resolution"],
    )


def history(*lines: str) -> list[str]:
    """Ana referred on day 0 and in measure m1 from day 1, then `lines`."""
    return [ANA.referred(0), ANA.started("m1", 1), *lines]
