"""`los vault rotate`: intake's identity vault re-encrypted under a new key, while intake
runs (deploy/README.md, Known gaps, item 7, says in which order)."""

from __future__ import annotations

import psycopg
import typer
from rich.console import Console
from rich.progress import Progress

from services.intake.application import Unreadable, Vault, vault_exists
from services.kernel.settings import get_settings

vault_app = typer.Typer(help="Intake's identity vault.")
console = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)


@vault_app.command("rotate")
def rotate() -> None:
    """Re-encrypt every national id in intake's vault under the first key of LOS_VAULT_KEY
    ("NEW,OLD"), in the database DATABASE_URL names, once intake runs with the same keys.
    Run it until it re-encrypts none; then intake can be given NEW alone."""
    settings = get_settings()
    if settings.database_url is None:
        raise typer.BadParameter("DATABASE_URL is not set: name intake's database")
    try:
        vault = Vault(settings.database_url, settings.vault_key.get_secret_value())
    except ValueError as error:  # a key that is not one
        raise typer.BadParameter(str(error)) from None
    try:
        if not vault_exists(settings.database_url):
            console.print("vault rotate stopped: the database DATABASE_URL names has no vault")
            raise typer.Exit(1)
        with Progress(disable=not console.is_terminal, console=console) as progress:
            task = progress.add_task("re-encrypting", total=vault.count())
            rotation = vault.rotate(lambda rows: progress.update(task, advance=rows))
    except Unreadable as unreadable:
        console.print(
            f"vault rotate stopped: {unreadable}, after re-encrypting"
            f" {unreadable.rotation.rotated:,} (give LOS_VAULT_KEY its key too)"
        )
        raise typer.Exit(1) from None
    except psycopg.Error as error:
        console.print(f"vault rotate stopped: {error}")
        raise typer.Exit(1) from None
    console.print(
        f"{rotation.rotated:,} national ids re-encrypted under the first key,"
        f" {rotation.current:,} were already"
        + ("" if rotation.rotated == 0 else "; run it again until it re-encrypts none")
    )
