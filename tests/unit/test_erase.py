"""What `los erase` says it erased of a person: each kind of row in its number."""

from services.cli.erase import KEPT, Erasure
from services.kernel.keys import ERASED, KEY, NOTHING


def test_an_erasure_names_what_went_each_in_its_number() -> None:
    deleted = {names: n for (_, _, names), n in zip(KEPT, [1, 3, 2, 0, 2], strict=True)}

    assert str(Erasure(KEY, deleted)) == (
        "erased their key, 1 national id, 3 alert changes, 2 alerts, 2 caseload entries"
    )
    assert str(Erasure(NOTHING, deleted)) == (
        "erased 1 national id, 3 alert changes, 2 alerts, 2 caseload entries"
    )
    assert str(Erasure(ERASED, dict.fromkeys(deleted, 0))) == (
        "erased before; nothing more to erase"
    )
    assert str(Erasure(NOTHING, {})) == "not known to Los; no event about them will be taken"
