"""The employer process: `python -m services.employer.main`."""

from __future__ import annotations

from services.employer.application import EmployerApplication
from services.kernel.runtime import run, serve_source
from services.kernel.settings import Settings


async def main(settings: Settings) -> None:
    await serve_source(
        settings, "employer", settings.employer_port, lambda env: EmployerApplication(env=env)
    )


if __name__ == "__main__":
    run(main, keys=("pseudonym_key", "source_token_key"))
