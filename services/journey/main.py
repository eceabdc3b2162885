"""The journey process: `python -m services.journey.main`."""

from __future__ import annotations

from services.journey.application import JourneyApplication
from services.kernel.runtime import run, serve_source
from services.kernel.settings import Settings


async def main(settings: Settings) -> None:
    await serve_source(
        settings, "journey", settings.journey_port, lambda env: JourneyApplication(env=env)
    )


if __name__ == "__main__":
    run(main, keys=("pseudonym_key", "source_token_key"))
