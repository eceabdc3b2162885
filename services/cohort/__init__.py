"""Synthetic cohorts for Los: realistic edge events (CONTRACT §1) for thousands of
people going through Norwegian work-inclusion services, with the handover gaps they
hold known in advance — for demos, benchmarks and tests of the rules.

    cohort = generate_cohort(13_000, seed=1, start=date(2023, 1, 1), end=date(2025, 12, 31))
    write_jsonl("events.jsonl", cohort.events)   # about 100,000 events
    cohort.handover_gaps                          # what `los replay` should raise

What a cohort guarantees:

- Every event is a valid CONTRACT §1 object (plain, JSON-ready dicts): RFC 3339
  timestamps with the Europe/Oslo offset of the moment, a synthetic national id
  (month +80 or +40, valid check digits, one per person), organisation numbers with
  valid check digits, kommunenummer for municipal sources.
- The events are in `recorded_at` order (ties in the order they were drawn, an end
  after its start); none is recorded after `end` (nor after `now`), and none before
  `start` (recent people aside, below).
- The same arguments give the same cohort, event ids included; nothing reads the clock.
- `handover_gaps` is exactly the set of HANDOVER_GAP conditions (CONTRACT §4, default
  windows of 14 and 7 days) due before the end of the window: `injected_gaps` (one for
  round(gap_share × people) people, when the window leaves room) and `dropout_gaps`.
  Everywhere else the person's next engagement, or the closing of their journey,
  falls well inside the window and is recorded before the gap would be due, so a
  replay raises no other HANDOVER_GAP, not even one later resolved as late information.
- With `now`, the recent people's gaps fall due within `recent_span` after `now`, and
  all their events are recorded by `now`. Their history may begin before `start`
  when the window is shorter than the way to their first handover.
- No coordinator is given more than 25 people.

What it does not promise: the other rules (a late first start, a coordinator assigned
late or never, a missing six-month check, an early job exit, measure churn, a stale
measure) happen at realistic rates but are not listed. A dropout sometimes ends a
measure with no `measure.ended` of its own (CONTRACT §3 ends it); a reading of
STALE_MEASURE that waits for a `measure.ended` will flag those. Broken lines
(`invalid_share`) are extra copies with their own event ids, so the valid history and
the ground truth are unchanged by them.

A fully observed person has about 10 events; in a three-year window, which cuts off
the journeys still going at its end, they average about 7.7. Memory is about 1.2 kB an event.
"""

from services.cohort.corruption import InvalidLine
from services.cohort.generator import (
    Cohort,
    Event,
    InjectedGap,
    generate,
    generate_cohort,
    write_jsonl,
)

__all__ = [
    "Cohort",
    "Event",
    "InjectedGap",
    "InvalidLine",
    "generate",
    "generate_cohort",
    "write_jsonl",
]
