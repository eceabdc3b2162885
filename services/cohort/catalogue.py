"""What a synthetic cohort is made of: the measures people go through, the places they
live, and how often each thing happens.

The measures and their usual lengths follow NAV's tiltakskoder and the adult-education
and municipal programmes of CONTRACT §2; the shares are rough figures from Norwegian
work-inclusion reports, chosen so that every rule of CONTRACT §4 has something to find.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate
from typing import Generic, TypeVar

from services.kernel.vocabulary import MainGoal, NeedGroup, SourceSystem

T = TypeVar("T")


class Weighted(Generic[T]):
    """Values drawn in proportion to their weights; the table is built once, since a
    cohort draws from it hundreds of thousands of times."""

    def __init__(self, choices: Iterable[tuple[T, int]]) -> None:
        pairs = list(choices)
        self.values = [value for value, _ in pairs]
        self._bounds = list(accumulate(weight for _, weight in pairs))

    def draw(self, rng: random.Random) -> T:
        return self.values[bisect(self._bounds, rng.random() * self._bounds[-1])]


@dataclass(frozen=True, slots=True)
class MeasureKind:
    """A measure code, the kind of source that runs it, and how long it usually lasts."""

    code: str
    system: SourceSystem
    min_days: int
    max_days: int


_NAV, _VO, _KOMMUNE = SourceSystem.NAV, SourceSystem.VO, SourceSystem.KOMMUNE

MEASURES: dict[str, MeasureKind] = {
    kind.code: kind
    for kind in (
        MeasureKind("AVKLARING", _NAV, 28, 84),
        MeasureKind("ARBEIDSFORBEREDENDE_TRENING", _NAV, 120, 365),
        MeasureKind("ARBEIDSTRENING", _NAV, 60, 270),
        MeasureKind("OPPFOLGING", _NAV, 90, 365),
        MeasureKind("JOBBKLUBB", _NAV, 21, 70),
        MeasureKind("GRUPPE_ARBEIDSMARKEDSOPPLAERING", _NAV, 30, 300),
        MeasureKind("INDIVIDUELL_JOBBSTOTTE", _NAV, 120, 540),
        MeasureKind("MENTOR", _NAV, 60, 180),
        MeasureKind("MIDLERTIDIG_LONNSTILSKUDD", _NAV, 180, 365),
        MeasureKind("NORSKOPPLAERING", _VO, 120, 540),
        MeasureKind("GRUNNSKOLE_VOKSNE", _VO, 180, 365),
        MeasureKind("FAG_OG_YRKESOPPLAERING", _VO, 270, 730),
        MeasureKind("INTRODUKSJONSPROGRAM", _KOMMUNE, 270, 730),
        MeasureKind("KVALIFISERINGSPROGRAM", _KOMMUNE, 180, 365),
        MeasureKind("ARBEIDSPRAKSIS_KOMMUNE", _KOMMUNE, 60, 180),
    )
}


@dataclass(frozen=True, slots=True)
class Profile:
    """A kind of participant: which measures they tend to get, and how they start."""

    name: str
    weight: int
    min_age: int
    max_age: int
    first_measures: Weighted[str]
    measures: tuple[tuple[str, int], ...]

    def next_measure(self, rng: random.Random, current: str | None) -> str:
        """A measure to follow `current`: any of the profile's but the same again."""
        table = _NEXT_MEASURES.get((self.name, current))
        if table is None:
            table = Weighted((code, w) for code, w in self.measures if code != current)
            _NEXT_MEASURES[self.name, current] = table
        return table.draw(rng)


_NEXT_MEASURES: dict[tuple[str, str | None], Weighted[str]] = {}


PROFILES: tuple[Profile, ...] = (
    # Newly settled refugees: the introduction programme with Norwegian classes beside it.
    Profile(
        "newcomer",
        25,
        18,
        55,
        first_measures=Weighted((("INTRODUKSJONSPROGRAM", 8), ("NORSKOPPLAERING", 2))),
        measures=(
            ("NORSKOPPLAERING", 30),
            ("ARBEIDSPRAKSIS_KOMMUNE", 14),
            ("GRUNNSKOLE_VOKSNE", 10),
            ("FAG_OG_YRKESOPPLAERING", 8),
            ("ARBEIDSTRENING", 10),
            ("MENTOR", 5),
            ("JOBBKLUBB", 6),
            ("GRUPPE_ARBEIDSMARKEDSOPPLAERING", 6),
        ),
    ),
    # Under 30: the group the U30 model gives one coordinator all the way to work.
    Profile(
        "young",
        35,
        18,
        29,
        first_measures=Weighted(
            (("AVKLARING", 5), ("OPPFOLGING", 3), ("KVALIFISERINGSPROGRAM", 2))
        ),
        measures=(
            ("ARBEIDSFORBEREDENDE_TRENING", 14),
            ("ARBEIDSTRENING", 12),
            ("JOBBKLUBB", 10),
            ("INDIVIDUELL_JOBBSTOTTE", 10),
            ("MENTOR", 8),
            ("GRUNNSKOLE_VOKSNE", 8),
            ("FAG_OG_YRKESOPPLAERING", 8),
            ("OPPFOLGING", 6),
            ("GRUPPE_ARBEIDSMARKEDSOPPLAERING", 4),
            ("MIDLERTIDIG_LONNSTILSKUDD", 4),
        ),
    ),
    Profile(
        "established",
        40,
        30,
        62,
        first_measures=Weighted(
            (("AVKLARING", 5), ("OPPFOLGING", 4), ("KVALIFISERINGSPROGRAM", 1))
        ),
        measures=(
            ("ARBEIDSTRENING", 14),
            ("OPPFOLGING", 10),
            ("GRUPPE_ARBEIDSMARKEDSOPPLAERING", 10),
            ("JOBBKLUBB", 10),
            ("ARBEIDSFORBEREDENDE_TRENING", 8),
            ("MIDLERTIDIG_LONNSTILSKUDD", 8),
            ("ARBEIDSPRAKSIS_KOMMUNE", 6),
            ("INDIVIDUELL_JOBBSTOTTE", 6),
            ("KVALIFISERINGSPROGRAM", 4),
        ),
    ),
)

PROFILE_MIX = Weighted((profile, profile.weight) for profile in PROFILES)

# Pairs that commonly run side by side rather than one after the other.
PARALLEL_MEASURES = frozenset({"NORSKOPPLAERING", "INTRODUKSJONSPROGRAM", "MENTOR"})


@dataclass(frozen=True, slots=True)
class Kommune:
    """A municipality (kommunenummer, 2024 numbering) and its NAV offices' teams."""

    number: str
    weight: int
    offices: tuple[str, ...]


KOMMUNER: tuple[Kommune, ...] = (
    Kommune(
        "0301",
        30,
        ("grunerlokka", "gamle-oslo", "alna", "grorud", "stovner", "sondre-nordstrand", "sagene"),
    ),
    Kommune("4601", 12, ("bergenhus", "arna", "fana", "laksevag")),
    Kommune("5001", 9, ("midtbyen", "falkenborg", "lerkendal", "heimdal")),
    Kommune("1103", 6, ("stavanger",)),
    Kommune("4204", 5, ("kristiansand",)),
    Kommune("3301", 5, ("drammen",)),
    Kommune("5501", 4, ("tromso",)),
    Kommune("3107", 4, ("fredrikstad",)),
)

KOMMUNE_MIX = Weighted((kommune, kommune.weight) for kommune in KOMMUNER)

# Need group (innsatsgruppe) with the chance the person needs a coordinator: about half
# of all participants do, most of those with reduced work capacity.
NEED_GROUPS: Weighted[tuple[NeedGroup, float]] = Weighted(
    (
        ((NeedGroup.GODE_MULIGHETER, 0.2), 20),
        ((NeedGroup.TRENGER_VEILEDNING, 0.45), 35),
        ((NeedGroup.TRENGER_VEILEDNING_NEDSATT_ARBEIDSEVNE, 0.7), 25),
        ((NeedGroup.JOBBE_DELVIS, 0.55), 10),
        ((NeedGroup.LITEN_MULIGHET_TIL_A_JOBBE, 0.8), 10),
    )
)

MAIN_GOALS = Weighted(
    ((MainGoal.SKAFFE_ARBEID, 75), (MainGoal.OKE_DELTAKELSE, 15), (MainGoal.BEHOLDE_ARBEID, 10))
)

# How many measures a journey is planned to have before it ends.
MEASURE_COUNTS = Weighted(((1, 20), (2, 28), (3, 24), (4, 16), (5, 12)))

# Each coordinator follows at most this many people (the U30 model's caseload).
CASELOAD_CAP = 25
