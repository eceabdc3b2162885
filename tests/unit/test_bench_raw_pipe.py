"""`bench.raw_pipe.run`: the raw pipe the target is held to, then nats-py's `fetch` for
context; a failure of the second must not lose the first."""

from pathlib import Path
from typing import Any, cast

import pytest

from bench import raw_pipe
from bench.common import Context, Figure


async def test_a_failed_context_pipe_keeps_the_baseline_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def pipe(ctx: Any, path: Path, lines: int, fetch: str) -> tuple[Figure, dict[str, Any]]:
        if fetch == "nats-py":
            raise RuntimeError("raw pipe sink exited with 1:", "nats: timeout")
        return Figure("raw_pipe_rate", "Raw pipe", 20_000.0, "events/s"), {"events": lines}

    monkeypatch.setattr(raw_pipe, "_pipe", pipe)

    result = await raw_pipe.run(cast(Context, None), Path("cohort.jsonl"), 1_000)

    assert [figure.key for figure in result.figures] == ["raw_pipe_rate"]
    assert result.details == {
        "events": 1_000,
        "nats_py_fetch": {"failed": ["raw pipe sink exited with 1:", "nats: timeout"]},
    }
