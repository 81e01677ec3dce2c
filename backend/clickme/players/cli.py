"""`clickme players`: player quality from the command line."""

import typer

from clickme.core.db import configured_session
from clickme.players.privacy import forget_player

app = typer.Typer(help="Players: quality flags, forgetting personal data.", no_args_is_help=True)


@app.command("forget")
def forget(player_id: int = typer.Argument(help="The player's number.")) -> None:
    """Remove a player's personal data (recruitment ids, IP hash, browser, chosen name); their
    anonymised strokes stay."""
    with configured_session() as (session, _settings):
        report = forget_player(session, player_id)
    if report is None:
        typer.echo(f"no player {player_id}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"player {player_id} forgotten: cleared {', '.join(report.cleared)}")
