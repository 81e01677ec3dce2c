"""`clickme images prepare`: a campaign's photos prepared before players come."""

from typing import Annotated

import typer
from sqlalchemy import select

from clickme.campaigns.models import Campaign
from clickme.campaigns.service import prepare_photos
from clickme.core.db import configured_session
from clickme.scoring.reveal import PreparedImageCache


def prepare(
    campaign: Annotated[str, typer.Option(help="Campaign slug.")],
) -> None:
    """Prepare a campaign's photos for revealing (crop and background) and for display (sized
    for screens), kept in the data dir, before players come, so that no round pays for them."""
    with configured_session() as (session, settings):
        found = session.scalar(select(Campaign).where(Campaign.slug == campaign))
        if found is None:
            typer.echo(f"no campaign {campaign!r}", err=True)
            raise typer.Exit(1)
        cache = PreparedImageCache(1, settings.prepared_dir)
        count = prepare_photos(session, found, cache, settings, progress=True)
    typer.echo(
        f"{count} photos of campaign {campaign!r} prepared in {settings.prepared_dir} "
        f"and {settings.display_dir}"
    )
