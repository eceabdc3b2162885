"""Norwegian identifiers: national ids (with NAV's 2032 rule), orgnr, kommunenummer, pseudonyms."""

import random
import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.no import fodselsnummer

from services.kernel.ids import (
    pseudonym,
    synthetic_national_id,
    synthetic_orgnr,
    validate_national_id,
    validate_org,
    validate_orgnr,
)

# Every valid number here is one nobody can hold: in the synthetic ranges (month +40 or
# +80), or born in the future (2036-2039: years 36-39 with an individual number 500-999),
# or on a day that never was. The validator reads no century, so a future birth date is
# no reason to reject (python-stdnum, which reads one, says "not been born yet").
#
# Worked by hand for born 15.03.2039, individual number 724 (digits 1 5 0 3 3 9 7 2 4):
#   k1 weights 3 7 6 1 8 9 4 5 2 → 3+35+0+3+24+81+28+10+8 = 192, 192 % 11 = 5, k1 = 11-5 = 6
#   k2 weights 5 4 3 2 7 6 5 4 3 2 → 5+20+0+6+21+54+35+8+12+2·6 = 173, 173 % 11 = 8, k2 = 3
# With the day +40 (D-number, first digit 5):
#   k1 15+35+0+3+24+81+28+10+8 = 204, 204 % 11 = 6, k1 = 5
#   k2 25+20+0+6+21+54+35+8+12+2·5 = 191, 191 % 11 = 4, k2 = 7
# and likewise with the month +40 / +80 (synthetic):
HAND_COMPUTED = {
    "15033972463": "fødselsnummer",
    "55033972457": "D-number: 204 → k1 5; 191 → k2 7",
    "15433972446": "NAV synthetic +40: 216 → k1 4; 181 → k2 6",
    "15833972429": "Tenor synthetic +80: 240 → k1 2; 189 → k2 9",
}

# The properties of navikt/fnrvalidator's test numbers (tests/fnr.spec.ts) and
# python-stdnum's doctest, on numbers of our own: theirs in the ordinary ranges are
# born in the past and may belong to real people. Theirs in the synthetic ranges are kept.
PUBLISHED_VALID = [
    "13093950075",  # fnr
    "29023650078",  # 29 February of a leap year (2036)
    "29020048059",  # year 00 is a leap year (individual number 480 makes it 1900: no such day)
    "15023962400",  # a check digit computed as 11 is 0 (both here: sums 187 and 154)
    "53093950069",  # D-number
    "13527248013",  # +40
    "10915596784",  # +80
    "68467038838",  # D-number and +40
    "50846202355",  # D-number and +80
    "02013999948",  # 2032 rule, born 2039: k1 remainder 3
    "30103999916",  # 2032 rule, remainder 0
    "30103999924",  # 2032 rule, remainder 1: the same birth date and individual number
    "70103999926",  # 2032 rule on a D-number: k1 remainder 2
    "15103995180",  # individual number 900-999, as python-stdnum's example
]


@pytest.mark.parametrize("number", [*HAND_COMPUTED, *PUBLISHED_VALID])
def test_valid_national_ids_are_accepted(number):
    assert validate_national_id(number) == number


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("1503397246", "11 digits expected"),
        ("150339724634", "11 digits expected"),
        ("1503397246A", "11 digits expected"),
        ("150339 72463", "11 digits expected"),
        ("１５０３３９７２４６３", "11 digits expected"),  # full-width digits are not 0-9
        ("15033972465", "check digit k2 invalid"),
        ("15033972453", "check digit k1 invalid"),  # classical k1 is 6; 5 is no remainder 0-3
        ("02013999946", "check digit k2 invalid"),
        ("15133972463", "the month of its birth date is not a valid month"),
        ("15003972463", "the month of its birth date is not a valid month"),
        ("15253972463", "the month of its birth date is not a valid month"),
        ("15653972463", "the month of its birth date is not a valid month"),  # +40 taken off 65
        ("15933972463", "the month of its birth date is not a valid month"),  # +80 taken off 93
        ("32033972463", "the day of its birth date is not a valid day of its month"),
        ("00033972463", "the day of its birth date is not a valid day of its month"),
        (
            "72033972463",
            "the day of its birth date is not a valid day of its month",
        ),  # D-number: 72 - 40
        ("31043972463", "the day of its birth date is not a valid day of its month"),
        (
            "29023972463",
            "the day of its birth date is not a valid day of its month",
        ),  # 2039 is no leap year
        ("29020112345", "the day of its birth date is not a valid day of its month"),
        (
            "95033972463",
            "the day of its birth date is not a valid day of its month",
        ),  # FH numbers carry no date
    ],
)
def test_invalid_national_ids_say_why_without_the_number(number, reason):
    with pytest.raises(ValueError, match=f"^{reason}$") as error:
        validate_national_id(number)
    # No digit of the number either: a mistyped number is still most of a birth date.
    assert not re.search("[0-9]", re.sub("11 digits|k1|k2", "", str(error.value)))


def test_the_2032_rule_lets_k1_take_the_remainders_0_to_3():
    # Base 150339724 has a k1 weighted sum with remainder 5: classical k1 6 (rest 0), and
    # 7, 8, 9 for rests 1, 2, 3. With k1 = 7 the k2 sum is 161 + 14 = 175, % 11 = 10, k2 1;
    # with k1 = 9 it is 179, % 11 = 3, k2 8; with k1 = 8 it is 177, % 11 = 1: k2 would be
    # 10, so no number has k1 8.
    assert validate_national_id("15033972471") == "15033972471"
    assert validate_national_id("15033972498") == "15033972498"
    for k2 in "0123456789":
        with pytest.raises(ValueError, match=r"^check digit k2 invalid$"):
            validate_national_id(f"1503397248{k2}")
        with pytest.raises(ValueError, match=r"^check digit k1 invalid$"):
            validate_national_id(f"1503397245{k2}")


def test_2032_rule_wrong_k1_under_the_old_rule_is_caught_by_k2():
    # fnrvalidator's "checksum 1 is invalid" example, on our fnr 13093950075: k1 8 is
    # remainder 1, allowed from 2032, but k2 was computed for k1 7.
    with pytest.raises(ValueError, match=r"^check digit k2 invalid$"):
        validate_national_id("13093950085")


def _fnrvalidator_accepts(digits: str) -> bool:
    """navikt/fnrvalidator's `idnr` (src/validator.ts), transcribed as the test oracle."""
    if not re.fullmatch(r"\d{11}", digits):
        return False
    n = [int(c) for c in digits]
    k1_sum = sum(w * d for w, d in zip((3, 7, 6, 1, 8, 9, 4, 5, 2), n, strict=False))
    valid_k1 = []
    for rest in range(4):
        k1 = (11 + rest) - (k1_sum % 11)
        if k1 > 10:
            k1 -= 11
        if k1 != 10:
            valid_k1.append(k1)
    if n[9] not in valid_k1:
        return False
    k2_weights = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
    k2 = 11 - (sum(w * d for w, d in zip(k2_weights, n, strict=False)) % 11)
    if k2 == 11:
        k2 = 0
    if not (k2 < 10 and k2 == n[10]):
        return False
    day = int(digits[0:2]) - (40 if n[0] >= 4 else 0)
    month = int(digits[2:4]) - (80 if n[2] >= 8 else 40 if n[2] >= 4 else 0)
    year = int(digits[4:6]) or 2000
    year += 1900 if year < 100 else 0  # JavaScript's Date.UTC reads 1-99 as 1901-1999
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("number", [*HAND_COMPUTED, *PUBLISHED_VALID])
def test_the_valid_examples_belong_to_nobody(number):
    # Not by the code under test: fnrvalidator's rules accept each number, and unless it is
    # synthetic, python-stdnum (which reads the century from the individual number) finds
    # its birth date impossible or in the future. From 2036 on, replace the ones that fail.
    assert _fnrvalidator_accepts(number)
    if int(number[2]) >= 4:
        return
    try:
        born = fodselsnummer.get_birth_date(number)
    except StdnumError:
        return  # a day that never was
    assert born > date.today()


def _check_digit(digits: str, weights: tuple[int, ...], remainder: int) -> str:
    # The digit that leaves `remainder` when added to the weighted sum; "10" becomes a
    # wrong "0", so the strategy also makes numbers with no valid digit there.
    return str((remainder - sum(w * int(d) for w, d in zip(weights, digits, strict=False))) % 11)[
        -1
    ]


@st.composite
def plausible_ids(draw: st.DrawFn) -> str:
    """Dates that often exist (offsets included) and check digits that often fit, so that
    both verdicts come up often; k1 is tried with the remainders 0-3 and with 4."""
    day = draw(st.one_of(st.integers(1, 31), st.integers(41, 71), st.integers(0, 99)))
    month = draw(
        st.one_of(*(st.integers(low, low + 11) for low in (1, 41, 81)), st.integers(0, 99))
    )
    digits = f"{day:02d}{month:02d}" + draw(st.text(alphabet="0123456789", min_size=5, max_size=5))
    k1_options = [_check_digit(digits, (3, 7, 6, 1, 8, 9, 4, 5, 2), r) for r in range(5)]
    digits += draw(st.one_of(st.sampled_from(k1_options), st.sampled_from("0123456789")))
    k2 = _check_digit(digits, (5, 4, 3, 2, 7, 6, 5, 4, 3, 2), 0)
    return digits + draw(st.one_of(st.just(k2), st.sampled_from("0123456789")))


@given(plausible_ids())
def test_agrees_with_navs_fnrvalidator(digits):
    try:
        validate_national_id(digits)
    except ValueError:
        accepted = False
    else:
        accepted = True
    assert accepted == _fnrvalidator_accepts(digits)


birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2039, 12, 31))


@given(birth_dates, st.sampled_from([40, 80]), st.integers(0, 2**32))
def test_synthetic_ids_are_valid_and_any_one_digit_change_is_not(birth, plus, seed):
    number = synthetic_national_id(random.Random(seed), birth, plus=plus)
    assert validate_national_id(number) == number
    assert number[:2] == f"{birth.day:02d}"
    assert int(number[2:4]) == birth.month + plus
    assert number[4:6] == f"{birth.year % 100:02d}"
    # The 2032 rule accepts some k1 changes (remainders 1-3), but never a one-digit change:
    # k2 checks all ten digits before it with weights 5 4 3 2 7 6 5 4 3 2, none a multiple
    # of 11, so changing one digit by 1-9 always moves the k2 sum off its remainder.
    for position in range(11):
        for digit in "0123456789":
            if digit == number[position]:
                continue
            changed = number[:position] + digit + number[position + 1 :]
            with pytest.raises(ValueError, match=r"check digit|is not a valid"):
                validate_national_id(changed)


@pytest.mark.parametrize(
    ("birth", "lowest", "highest"),
    [(date(1985, 3, 15), 0, 499), (date(2005, 6, 1), 500, 999), (date(1880, 1, 1), 500, 749)],
)
def test_synthetic_individual_number_matches_the_century(birth, lowest, highest):
    rng = random.Random(7)
    individual = {int(synthetic_national_id(rng, birth)[6:9]) for _ in range(200)}
    assert lowest <= min(individual)
    assert max(individual) <= highest
    assert len(individual) > 50  # drawn from the rng, not fixed


def test_synthetic_ids_are_reproducible_from_the_seed():
    birth = date(1990, 12, 31)
    first = [synthetic_national_id(random.Random(3), birth) for _ in range(2)]
    assert first[0] == first[1]
    assert synthetic_national_id(random.Random(4), birth) != first[0]


@pytest.mark.parametrize("plus", [0, 20, 60])
def test_synthetic_ids_take_only_the_synthetic_offsets(plus):
    with pytest.raises(ValueError, match="plus"):
        synthetic_national_id(random.Random(1), date(1990, 1, 1), plus=plus)


def test_synthetic_ids_need_a_year_with_individual_numbers():
    with pytest.raises(ValueError, match="birth year"):
        synthetic_national_id(random.Random(1), date(2040, 1, 1))


@pytest.mark.parametrize("number", ["974760673", "988077917", "889640782"])
def test_valid_orgnr(number):
    assert validate_orgnr(number) == number
    assert validate_org(number) == number


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("974760674", "check digit invalid"),
        ("988077918", "check digit invalid"),
        ("97476067", "9 digits expected"),
        ("9747606730", "9 digits expected"),
        ("974 760 673", "9 digits expected"),
        ("97476067A", "9 digits expected"),
    ],
)
def test_invalid_orgnr(number, reason):
    with pytest.raises(ValueError, match=f"^{reason}$"):
        validate_orgnr(number)


@pytest.mark.parametrize("kommunenummer", ["0301", "4601", "5001", "1103"])
def test_org_takes_a_kommunenummer(kommunenummer):
    assert validate_org(kommunenummer) == kommunenummer


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("301", "9-digit organisasjonsnummer or 4-digit kommunenummer expected"),
        ("03011", "9-digit organisasjonsnummer or 4-digit kommunenummer expected"),
        ("", "9-digit organisasjonsnummer or 4-digit kommunenummer expected"),
        ("974760674", "check digit invalid"),
    ],
)
def test_org_rejects_anything_else(value, reason):
    with pytest.raises(ValueError, match=f"^{reason}$"):
        validate_org(value)


@given(st.integers(0, 2**32))
def test_synthetic_orgnr_is_valid_and_starts_with_8_or_9(seed):
    number = synthetic_orgnr(random.Random(seed))
    assert validate_orgnr(number) == number
    assert number[0] in "89"


def test_pseudonym_is_hmac_sha256_keyed_by_the_pseudonym_key():
    # RFC 4231, test case 2: HMAC-SHA256(key "Jefe", "what do ya want for nothing?").
    assert pseudonym("what do ya want for nothing?", "Jefe") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_pseudonym_links_a_person_only_under_the_same_key():
    person = "15833972429"
    assert pseudonym(person, "k1") == pseudonym(person, "k1")
    assert pseudonym(person, "k1") != pseudonym(person, "k2")
    assert pseudonym(person, "k1") != pseudonym("15433972446", "k1")
    assert re.fullmatch(r"[0-9a-f]{64}", pseudonym(person, "nøkkel"))
