"""`clickme players flag`: every player's automatic flags computed again."""

import typer

from clickme.core.db import configured_session
from clickme.insights.flags import refresh_flags
from clickme.scoring.reveal import PreparedImageCache


def flag() -> None:
    """(Re)compute every player's automatic flags; running it again changes nothing."""
    with configured_session() as (session, settings):
        images = PreparedImageCache(settings.image_cache_size, settings.prepared_dir)
        report = refresh_flags(session, images, settings.images_dir)
    typer.echo(
        f"{report.players} players measured: {report.raised} flags raised, {report.cleared} cleared"
    )
