"""`clickme players`: player quality from the command line."""

import typer

from clickme.core.config import get_settings
from clickme.core.db import Database
from clickme.players.flags import refresh_flags
from clickme.players.privacy import forget_player
from clickme.scoring.reveal import PreparedImageCache

app = typer.Typer(help="Players: quality flags, forgetting personal data.", no_args_is_help=True)


@app.command("flag")
def flag() -> None:
    """(Re)compute every player's automatic flags; running it again changes nothing."""
    settings = get_settings()
    database = Database(settings.resolved_database_url)
    with database.session() as session:
        report = refresh_flags(
            session, PreparedImageCache(settings.image_cache_size), settings.images_dir
        )
    database.dispose()
    typer.echo(
        f"{report.players} players measured: {report.raised} flags raised, {report.cleared} cleared"
    )


@app.command("forget")
def forget(player_id: int = typer.Argument(help="The player's number.")) -> None:
    """Remove a player's personal data (recruitment ids, IP hash, browser, chosen name); their
    anonymised strokes stay."""
    settings = get_settings()
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            report = forget_player(session, player_id)
    finally:
        database.dispose()
    if report is None:
        typer.echo(f"no player {player_id}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"player {player_id} forgotten: cleared {', '.join(report.cleared)}")
