"""The live clock of CONTRACT §3: how far outcomes may judge deadlines.

A deadline may fire once outcomes has seen everything recorded up to it. Facts reach
outcomes from three source services, each through its own outbox, so each service is
followed on its own: how far it has got (the latest recorded_at seen from it), whether
its facts are live (recorded moments before they arrive) or history (a backfill), and
when its facts last arrived. The clock is the least of how far each service has got:

- a service with a backlog in the stream, or still sending history, has got to its
  latest recorded_at, so one fast source cannot run the clock ahead of a slower one;
- a service whose facts are live (the last to arrive was recorded moments before) and
  with nothing pending in the stream has got to the wall clock less a transit allowance,
  whether it is still sending or has gone quiet;
- a live service has also got as far as its outbox last announced: "everything received
  before W is on the stream, up to sequence S" (`services/kernel/outbox.py`), less an
  allowance for the hop from the source system to the service, once outcomes has taken
  in the stream up to S. This holds with a backlog in the stream too, and spares waiting
  out the transit allowance;
- a service gone quiet in the middle of a backfill, or never heard from, holds the clock
  while others are still sending history: its history may be on its way. Once the whole
  bus is quiet, or every service heard from is live, it counts as caught up too.

So a backfill of history is judged on its own recorded_at, as `los replay` would judge
it, even when it starts after a quiet spell in which the clock had reached the wall
clock: the clock then steps back. Pure: every time is passed in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Facts recorded at most this long before they reach outcomes count as live.
LIVE_LAG = timedelta(minutes=1)
# Announcements kept per service while outcomes has not taken in the stream up to them.
PENDING_ANNOUNCEMENTS = 256
NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass
class Watermark:
    """How far one source service is known to have got."""

    reached: datetime
    live: bool  # the fact recorded last was live
    arrived: float = float("-inf")  # monotonic seconds; -inf after a restart
    arriving_live: bool = False  # the fact that arrived last was live


class LiveClock:
    def __init__(
        self,
        services: Iterable[str],
        quiet_period: timedelta,
        transit_allowance: timedelta,
        edge_allowance: timedelta,
        watermarks: dict[str, Watermark] | None = None,
    ) -> None:
        self.services = frozenset(services)
        self.watermarks = dict(watermarks or {})
        self._quiet = quiet_period.total_seconds()
        self._allowance = transit_allowance
        self._edge = edge_allowance
        self._announced: dict[str, deque[tuple[datetime, int]]] = {}
        # How far each service got by its announcements taken in, less the edge allowance.
        self._received: dict[str, datetime] = {}

    def saw(self, service: str, recorded_at: datetime, wall: datetime, monotonic: float) -> None:
        """A fact from `service`, recorded at `recorded_at`, came in at `wall`."""
        live = wall - recorded_at <= LIVE_LAG
        known = self.watermarks.get(service)
        if known is None or recorded_at >= known.reached:
            self.watermarks[service] = Watermark(recorded_at, live, monotonic, live)
        else:
            known.arrived = monotonic
            known.arriving_live = live

    def announced(self, service: str, received_by: datetime, through: int) -> None:
        """`service` has published everything it received before `received_by`, the last
        of it at stream sequence `through` (0: nothing)."""
        pending = self._announced.setdefault(service, deque(maxlen=PENDING_ANNOUNCEMENTS))
        pending.append((received_by, through))

    def took_in(self, through: int) -> None:
        """Outcomes has taken in every fact up to stream sequence `through`."""
        for service, pending in self._announced.items():
            while pending and pending[0][1] <= through:
                received_by, _ = pending.popleft()
                self._received[service] = max(
                    received_by - self._edge, self._received.get(service, NEVER)
                )

    def now(self, *, backlog: bool, wall: datetime, monotonic: float) -> datetime | None:
        """The clock, or None while some service may still be sending older history."""
        caught_up = wall - self._allowance
        sending_since = monotonic - self._quiet
        heard = [self.watermarks[s] for s in self.services if s in self.watermarks]
        bus_quiet = not backlog and all(mark.arrived <= sending_since for mark in heard)
        all_live = bool(heard) and all(mark.live for mark in heard)
        reached: list[datetime] = []
        for service in self.services:
            mark = self.watermarks.get(service)
            announced = self._received.get(service, NEVER)
            caught_up_here = max(caught_up, announced)
            if mark is None:
                if not (bus_quiet or all_live):
                    return None
                reached.append(caught_up_here)
            elif backlog:
                reached.append(max(mark.reached, announced) if mark.arriving_live else mark.reached)
            elif mark.arrived > sending_since:  # still sending: if live, all of it is in
                live = mark.arriving_live
                reached.append(max(mark.reached, caught_up_here) if live else mark.reached)
            elif mark.live or bus_quiet:
                reached.append(max(mark.reached, caught_up_here))
            else:
                reached.append(mark.reached)
        return min(reached)
