"""`clickme export`: a campaign's maps and rounds to files, with a progress bar."""

from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from clickme.exports.service import (
    DEFAULT_SHARD_SIZE,
    DEFAULT_SPLITS,
    ExportError,
    ExportRequest,
    preview_export,
    run_export,
)
from clickme.images.labels import class_from_text


class _Bar:
    """The export's progress as a tqdm bar on stderr."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def start(self, total: int) -> None:
        self.bar = tqdm(total=total, unit="image", desc="export")

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _classes(text: str | None) -> tuple[int, ...] | None:
    """Comma-separated classes, each an index, a synset or a name."""
    if text is None:
        return None
    try:
        return tuple(class_from_text(part) for part in text.split(",") if part.strip())
    except (ValueError, IndexError) as error:
        hint = "classes: e.g. 1,2 or 'tabby,computer mouse'"
        raise typer.BadParameter(f"{error} ({hint})") from error


def export(
    campaign: Annotated[str, typer.Option(help="Campaign slug.")],
    formats: Annotated[
        list[str],
        typer.Option("--format", help="npz, hdf5, png, csv, parquet or webdataset (repeatable)."),
    ],
    campaign_version: Annotated[
        int | None, typer.Option(help="Only rounds of this version.")
    ] = None,
    image_set: Annotated[
        str | None, typer.Option(help="The image set the campaign plays (checked).")
    ] = None,
    min_rounds: Annotated[int | None, typer.Option(help="Valid rounds an image needs.")] = None,
    classes: Annotated[
        str | None,
        typer.Option(help="Classes by index, synset or name, e.g. 1,2 or 'tabby,computer mouse'."),
    ] = None,
    min_reliability: Annotated[
        float | None, typer.Option(help="Minimum corrected split-half value per image.")
    ] = None,
    pointer_type: Annotated[str | None, typer.Option(help="mouse, touch or pen.")] = None,
    shard_size: Annotated[int, typer.Option(help="Images per WebDataset shard.")] = (
        DEFAULT_SHARD_SIZE
    ),
    splits: Annotated[int, typer.Option(help="Random splits per split-half value (0: none).")] = (
        DEFAULT_SPLITS
    ),
    out: Annotated[
        Path | None, typer.Option(help="Folder to write the export into (not for --dry-run).")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Write nothing: say how many images and rounds qualify, and why the rest do not.",
        ),
    ] = False,
    exclude_flag: Annotated[
        list[str] | None,
        typer.Option(help="Leave out players with an open flag of this kind (repeatable)."),
    ] = None,
) -> None:
    """Export a campaign's human maps and rounds (excluded players are always left out; players
    with an open flag of an --exclude-flag kind too, as the manifest records)."""
    from clickme.core.db import configured_session

    if out is None and not dry_run:
        raise typer.BadParameter("say where to write the export", param_hint="--out")

    request = ExportRequest(
        campaign=campaign,
        formats=tuple(formats),
        campaign_version=campaign_version,
        image_set=image_set,
        min_rounds=min_rounds,
        classes=_classes(classes),
        min_reliability=min_reliability,
        pointer_type=pointer_type,
        shard_size=shard_size,
        n_splits=splits,
        exclude_flags=tuple(exclude_flag or ()),
    )
    if dry_run:
        _dry_run(request)
        return
    assert out is not None
    bar = _Bar()
    try:
        with configured_session() as (session, settings):
            manifest = run_export(
                session,
                request,
                out,
                secret=settings.resolved_secret_key(),
                images_dir=settings.images_dir,
                progress=bar,
            )
    except ExportError as error:
        typer.echo(f"export failed: {error}", err=True)
        raise typer.Exit(code=1) from error
    finally:
        bar.close()
    counts = manifest["counts"]
    typer.echo(
        f"exported {counts['images']} images ({counts['images_with_map']} with a map), "
        f"{counts['rounds']} finished rounds ({counts['valid_rounds']} valid) from "
        f"{counts['players']} players to {out}"
    )
    for reason in manifest["without_map"].values():
        typer.echo(f"  without a map, {reason['images']} with {reason['rule']}")


def _dry_run(request: ExportRequest) -> None:
    """Prints what the export would hold; exits 1 when it would find nothing."""
    from clickme.core.db import configured_session

    try:
        with configured_session() as (session, _settings):
            preview = preview_export(session, request)
    except ExportError as error:
        typer.echo(f"export refused: {error}", err=True)
        raise typer.Exit(code=1) from error
    typer.echo(f"map rules: {preview['rules']}")
    for line in preview["summary"]:
        typer.echo(f"  {line}")
    if preview["problem"]:
        typer.echo(f"the export would find nothing: {preview['problem']}", err=True)
        raise typer.Exit(code=1)
