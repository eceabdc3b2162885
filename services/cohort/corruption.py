"""Bad lines for import testing: broken copies of a cohort's events, each labelled with
what is wrong with it, so that an importer's rejections can be checked one by one.

A broken line is an extra line, placed right after the event it copies and given its
own `event_id`: the valid history, and so the cohort's ground truth, stays as it was.
"""

from __future__ import annotations

import copy
import random
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from services.kernel.events import DATA_MODELS
from services.kernel.vocabulary import EventType

InvalidKind = Literal["bad_check_digit", "hours_pct_zero", "missing_data_field", "naive_timestamp"]


@dataclass(frozen=True, slots=True)
class InvalidLine:
    """One broken line: where it is (1-based, in the cohort's event order), its
    `event_id`, what was done to it and the field an importer should name."""

    line: int
    event_id: str
    kind: InvalidKind
    field: str


def mix_in_invalid(
    events: list[dict[str, Any]], rng: random.Random, share: float
) -> tuple[list[dict[str, Any]], list[InvalidLine]]:
    """`events` with round(share × len(events)) broken copies mixed in."""
    chosen = set(rng.sample(range(len(events)), round(share * len(events))))
    mixed: list[dict[str, Any]] = []
    invalid: list[InvalidLine] = []
    for index, event in enumerate(events):
        mixed.append(event)
        if index in chosen:
            broken, kind, field = _break(event, rng)
            mixed.append(broken)
            invalid.append(InvalidLine(len(mixed), broken["event_id"], kind, field))
    return mixed, invalid


def _break(event: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], InvalidKind, str]:
    broken = copy.deepcopy(event)
    broken["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    kinds: list[InvalidKind] = ["bad_check_digit", "missing_data_field", "naive_timestamp"]
    if event["type"] == EventType.PLACEMENT_STARTED:
        kinds = ["hours_pct_zero", "hours_pct_zero", "hours_pct_zero", *kinds]
    kind = rng.choice(kinds)
    if kind == "bad_check_digit":
        person = broken["person"]
        # Any other last digit breaks the second check digit (k2).
        broken["person"] = person[:10] + str((int(person[10]) + rng.randint(1, 9)) % 10)
        return broken, kind, "person"
    if kind == "hours_pct_zero":
        broken["data"]["hours_pct"] = 0
        return broken, kind, "data.hours_pct"
    if kind == "missing_data_field":
        model = DATA_MODELS[EventType(event["type"])]
        required = [name for name, info in model.model_fields.items() if info.is_required()]
        name = rng.choice(required)
        del broken["data"][name]
        return broken, kind, f"data.{name}"
    naive = datetime.fromisoformat(broken["occurred_at"]).replace(tzinfo=None)
    broken["occurred_at"] = naive.isoformat()
    return broken, kind, "occurred_at"
