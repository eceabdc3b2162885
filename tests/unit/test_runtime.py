"""`run`, which every service process is started by."""

import gc

from services.kernel import runtime
from services.kernel.settings import Settings


def test_a_service_collects_its_youngest_objects_less_often_than_python_does() -> None:
    seen: list[tuple[int, int, int]] = []

    async def main(settings: Settings) -> None:
        seen.append(gc.get_threshold())

    before = gc.get_threshold()
    try:
        runtime.run(main)
    finally:
        gc.set_threshold(*before)
    assert seen == [(runtime.YOUNG_COLLECTION, *before[1:])]
    assert before[0] < runtime.YOUNG_COLLECTION
