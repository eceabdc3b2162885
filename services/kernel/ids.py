"""Norwegian identifiers at the edge: national identity numbers, organisation numbers,
kommunenummer, and the pseudonym a person goes by inside the platform (CONTRACT §1, §5).

python-stdnum computes the check digits; what it lacks is added here: the synthetic
test numbers (month +40 and +80), the 2032 relaxation of the first check digit, and
error reasons a person can act on. A reason never contains the number itself.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import hmac
import random
import re
from datetime import date
from typing import Protocol

from stdnum.exceptions import ValidationError as StdnumError
from stdnum.no import fodselsnummer, orgnr

_ELEVEN_DIGITS = re.compile(r"[0-9]{11}")
# Eleven digits not part of a longer number, together or with a space or hyphen after the
# birth date.
_ELEVEN_DIGITS_IN_TEXT = re.compile(r"(?<![0-9])([0-9]{6})[ -]?([0-9]{5})(?![0-9])")
_NINE_DIGITS = re.compile(r"[0-9]{9}")
_FOUR_DIGITS = re.compile(r"[0-9]{4}")

# The offsets added to the month of synthetic test numbers: +40 by NAV (Dolly),
# +80 by Skatteetaten (Tenor).
SYNTHETIC_MONTH_OFFSETS = (40, 80)


def validate_national_id(value: str) -> str:
    """Return `value` if it is a fødselsnummer, D-number or synthetic test number.

    Mirrors navikt/fnrvalidator (src/validator.ts): the offsets are read from the digits
    (first digit >= 4: D-number; third digit >= 8: +80, >= 4: +40), and the birth date
    left after removing them must exist. Raises ValueError with a short reason.
    """
    if not _ELEVEN_DIGITS.fullmatch(value):
        raise ValueError("11 digits expected")
    _check_birth_date(value)
    _check_control_digits(value)
    return value


def holds_national_id(value: object) -> bool:
    """Whether `value` (text, a number, or JSON holding them, keys included) contains a
    national id: written as one in text, or a JSON number, which may have lost a leading 0."""
    if isinstance(value, str):
        return any(
            _is_national_id(birth + rest) for birth, rest in _ELEVEN_DIGITS_IN_TEXT.findall(value)
        )
    if isinstance(value, dict):
        return any(map(holds_national_id, value)) or any(map(holds_national_id, value.values()))
    if isinstance(value, list):
        return any(map(holds_national_id, value))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return 0 < value < 10**11 and _is_national_id(f"{value:011d}")
    return False


def _is_national_id(digits: str) -> bool:
    try:
        validate_national_id(digits)
    except ValueError:
        return False
    return True


def _check_birth_date(value: str) -> None:
    day, month, year = int(value[0:2]), int(value[2:4]), int(value[4:6])
    if int(value[0]) >= 4:
        day -= 40
    if int(value[2]) >= 8:
        month -= 80
    elif int(value[2]) >= 4:
        month -= 40
    # The reasons quote none of the digits: a mistyped number is still most of a birth date.
    if not 1 <= month <= 12:
        raise ValueError("the month of its birth date is not a valid month")
    # Like fnrvalidator, the century is not read from the individual number: only
    # 29 February depends on it, and 2000 + yy is a leap year exactly when yy % 4 == 0.
    if not 1 <= day <= calendar.monthrange(2000 + year, month)[1]:
        raise ValueError("the day of its birth date is not a valid day of its month")


def _check_control_digits(value: str) -> None:
    # From 2032 the individual numbers run out, so Skatteetaten lets k1 be computed
    # with remainder 0, 1, 2 or 3 instead of only 0; numbers issued so far all have
    # remainder 0, so accepting the relaxed set now rejects no valid number. This is
    # the `checksums` function of navikt/fnrvalidator (src/validator.ts), see
    # https://skatteetaten.github.io/folkeregisteret-api-dokumentasjon/nytt-fodselsnummer-fra-2032/
    # So k1 may be the classical one plus 0, 1, 2 or 3, modulo 11.
    classical_k1 = int(fodselsnummer.calc_check_digit1(value))
    if (int(value[9]) - classical_k1) % 11 > 3:
        raise ValueError("check digit k1 invalid")
    # k2 is computed over the first ten digits, the actual k1 included; "10" never matches.
    if fodselsnummer.calc_check_digit2(value) != value[10]:
        raise ValueError("check digit k2 invalid")


# Organisation numbers are few and public, and every event carries one or two: remembering
# the valid ones saves checking them again. National ids are not remembered here: see
# `KNOWN_NATIONAL_IDS` in vocabulary for a reader that keeps them anyway, and `Pseudonyms`
# for one that remembers only which were valid.
@functools.lru_cache(maxsize=65536)
def validate_orgnr(value: str) -> str:
    """Return `value` if it is an organisasjonsnummer: 9 digits, mod-11 check digit."""
    if not _NINE_DIGITS.fullmatch(value):
        raise ValueError("9 digits expected")
    try:
        orgnr.validate(value)
    except StdnumError:
        raise ValueError("check digit invalid") from None
    return value


def validate_org(value: str) -> str:
    """Return `value` if it is an organisasjonsnummer or a 4-digit kommunenummer."""
    if _FOUR_DIGITS.fullmatch(value):
        return value
    if not _NINE_DIGITS.fullmatch(value):
        raise ValueError("9-digit organisasjonsnummer or 4-digit kommunenummer expected")
    return validate_orgnr(value)


def pseudonym(national_id: str, key: str) -> str:
    """The person's id inside the platform: lowercase hex HMAC-SHA256 (CONTRACT §5)."""
    return hmac.new(key.encode(), national_id.encode(), hashlib.sha256).hexdigest()


class KnownIds(Protocol):
    """National ids a reader of many events has found valid: see `KNOWN_NATIONAL_IDS`."""

    def __contains__(self, national_id: object, /) -> bool: ...

    def add(self, national_id: str, /) -> None: ...


class Pseudonyms:
    """Each person's pseudonym, and the national ids found valid lately, remembered by
    their pseudonyms: no id is kept beyond the event being read. A source service reads
    its edge events with it (`KNOWN_NATIONAL_IDS`), so that a person's id is checked once
    rather than on every event of theirs (stdnum's check digits and the birth date,
    measured alone, are 40 % of reading an event). When `size` are remembered, it forgets
    them all and starts again."""

    def __init__(self, key: str, size: int) -> None:
        self._key = key
        self._size = size
        self._valid: set[str] = set()
        self._last = ("", "")  # the id of the event being read, and its pseudonym

    def of(self, national_id: str) -> str:
        """`pseudonym(national_id, key)`, computed once for the event being read."""
        if self._last[0] != national_id:
            self._last = (national_id, pseudonym(national_id, self._key))
        return self._last[1]

    def __contains__(self, national_id: object, /) -> bool:
        return isinstance(national_id, str) and self.of(national_id) in self._valid

    def add(self, national_id: str, /) -> None:
        if len(self._valid) >= self._size:
            self._valid.clear()
        self._valid.add(self.of(national_id))


def synthetic_national_id(rng: random.Random, birth: date, *, plus: int = 80) -> str:
    """A valid synthetic national id for someone born on `birth`, month offset by `plus`.

    The individual number is drawn from the range that belongs to the birth year's
    century, so the number also reads right to tools that derive the century from it.
    """
    if plus not in SYNTHETIC_MONTH_OFFSETS:
        raise ValueError(f"plus must be one of {SYNTHETIC_MONTH_OFFSETS}")
    low, high = _individual_numbers(birth.year)
    prefix = f"{birth.day:02d}{birth.month + plus:02d}{birth.year % 100:02d}"
    while True:
        digits = f"{prefix}{rng.randrange(low, high):03d}"
        k1 = fodselsnummer.calc_check_digit1(digits)
        if k1 == "10":
            continue
        k2 = fodselsnummer.calc_check_digit2(digits + k1)
        if k2 != "10":
            return digits + k1 + k2


def _individual_numbers(year: int) -> tuple[int, int]:
    if 1900 <= year <= 1999:
        return 0, 500
    if 2000 <= year <= 2039:
        return 500, 1000
    if 1854 <= year <= 1899:
        return 500, 750
    raise ValueError("birth year must be between 1854 and 2039")


def synthetic_orgnr(rng: random.Random) -> str:
    """A valid organisasjonsnummer starting with 8 or 9, as Brønnøysund's do."""
    while True:
        digits = rng.choice("89") + "".join(rng.choice("0123456789") for _ in range(7))
        # orgnr.checksum weighs the 9th digit by 1, so with 0 there it is the weighted
        # sum of the first eight; the check digit makes the full sum divisible by 11.
        check = (-orgnr.checksum(digits + "0")) % 11
        if check != 10:
            return digits + str(check)
