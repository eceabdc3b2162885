"""The organisations a synthetic cohort meets: NAV offices and their teams, measure
providers, adult-education centres, municipal services, employers and coordinators.

Drawn once per cohort from its random generator, so the same seed gives the same
organisation numbers; coordinators are handed out so that none follows more than
`CASELOAD_CAP` people.
"""

from __future__ import annotations

import random
from collections import defaultdict
from itertools import count

from services.cohort.catalogue import CASELOAD_CAP, KOMMUNER, Kommune
from services.kernel.ids import synthetic_orgnr
from services.kernel.vocabulary import SourceSystem

_PROVIDERS_PER_KOMMUNE = {SourceSystem.NAV: 6, SourceSystem.VO: 2, SourceSystem.KOMMUNE: 2}


class Caseloads:
    """Coordinators per team, each given to at most `CASELOAD_CAP` people."""

    def __init__(self) -> None:
        self._numbers = count(1)
        self._load: dict[str, int] = {}
        self._team: dict[str, list[str]] = defaultdict(list)

    def assign(self, rng: random.Random, org_unit: str) -> str:
        open_caseloads = [c for c in self._team[org_unit] if self._load[c] < CASELOAD_CAP]
        if open_caseloads:
            coordinator = rng.choice(open_caseloads)
        else:
            coordinator = f"c-{next(self._numbers):03d}"
            self._team[org_unit].append(coordinator)
            self._load[coordinator] = 0
        self._load[coordinator] += 1
        return coordinator

    def release(self, coordinator: str) -> None:
        """Undo an assignment of a history that was drawn again."""
        self._load[coordinator] -= 1


class Organisations:
    """Every organisation number the cohort uses, by kommune and kind."""

    def __init__(self, rng: random.Random, people: int) -> None:
        self.offices: dict[str, str] = {}
        self._providers: dict[tuple[str, SourceSystem], list[str]] = {}
        for kommune in KOMMUNER:
            for office in kommune.offices:
                self.offices[org_unit(kommune, office)] = synthetic_orgnr(rng)
            for system, how_many in _PROVIDERS_PER_KOMMUNE.items():
                self._providers[kommune.number, system] = [
                    synthetic_orgnr(rng) for _ in range(how_many)
                ]
        self._employers = [synthetic_orgnr(rng) for _ in range(max(30, people // 4))]
        self.caseloads = Caseloads()

    def provider(self, rng: random.Random, kommune: Kommune, system: SourceSystem) -> str:
        return rng.choice(self._providers[kommune.number, system])

    def employer(self, rng: random.Random) -> str:
        return rng.choice(self._employers)


def org_unit(kommune: Kommune, office: str) -> str:
    """A NAV office's team, as `org_unit` names it: nav-<kommunenummer>-<office>."""
    return f"nav-{kommune.number}-{office}"
