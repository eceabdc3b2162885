"""The intake process: `python -m services.intake.main`."""

from __future__ import annotations

from services.intake.application import IntakeApplication, Vault, create_vault
from services.kernel.runtime import run, serve_source
from services.kernel.settings import Settings


async def main(settings: Settings) -> None:
    def make_app(env: dict[str, str]) -> IntakeApplication:
        assert settings.database_url is not None
        create_vault(settings.database_url)
        vault = Vault(settings.database_url, settings.vault_key.get_secret_value())
        return IntakeApplication(vault, env=env)

    await serve_source(settings, "intake", settings.intake_port, make_app)


if __name__ == "__main__":
    run(main, keys=("pseudonym_key", "vault_key", "source_token_key"))
