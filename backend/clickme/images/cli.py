"""`clickme images`: import ImageNet-named folders or the demo photos, list sets and images."""

from pathlib import Path
from typing import Annotated

import typer

from clickme.core.db import configured_session
from clickme.images import service
from clickme.images.labels import class_name

app = typer.Typer(help="Image sets: import and list.", no_args_is_help=True)


def _print_report(report: service.ImportReport) -> None:
    typer.echo(
        f"image set {report.image_set!r}: {report.imported} imported, "
        f"{report.duplicates} already there, {len(report.problems)} problems, "
        f"{len(report.skipped)} skipped (not photos)"
    )
    for problem in report.problems:
        typer.echo(f"  {problem.path}: {problem.message}", err=True)
    if report.skipped:
        typer.echo(f"  skipped, not photos: {', '.join(report.skipped)}")


def _exit_code(report: service.ImportReport) -> int:
    """0 when the set now holds the folder's images (new or already there), 1 when none could."""
    return 0 if report.imported + report.duplicates > 0 else 1


@app.command("import")
def import_folder(
    directory: Annotated[
        Path,
        typer.Argument(
            exists=True,
            file_okay=False,
            resolve_path=True,
            help="Folder of nXXXXXXXX_*.JPEG files or of nXXXXXXXX/ class folders.",
        ),
    ],
    set_name: Annotated[
        str | None, typer.Option("--set", help="Image set name (default: the folder's name).")
    ] = None,
) -> None:
    """Import a folder in ImageNet naming; files already in the set are skipped."""
    with configured_session() as (session, settings):
        report = service.import_directory(
            session, directory, set_name or directory.name, settings.images_dir, progress=True
        )
    _print_report(report)
    raise typer.Exit(_exit_code(report))


@app.command("import-demo")
def import_demo() -> None:
    """Import the demo photos shipped with scikit-image into the `demo` set."""
    with configured_session() as (session, settings):
        report = service.import_demo_set(session, settings.images_dir)
    _print_report(report)
    raise typer.Exit(_exit_code(report))


@app.command("list")
def list_images(
    set_name: Annotated[
        str | None, typer.Option("--set", help="List this set's images (default: the sets).")
    ] = None,
) -> None:
    """List the image sets, or the images of one set (id, label, size)."""
    with configured_session() as (session, _settings):
        if set_name is None:
            for image_set, size in service.image_set_sizes(session):
                typer.echo(f"{image_set.name}\t{size} images")
            return
        if service.find_image_set(session, set_name) is None:
            typer.echo(f"no image set {set_name!r}", err=True)
            raise typer.Exit(1)
        for image in service.list_images(session, set_name):
            label = f"{image.class_index} {class_name(image.class_index)}"
            typer.echo(f"{image.id}\t{label}\t{image.width}x{image.height}")
