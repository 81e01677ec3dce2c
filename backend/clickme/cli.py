"""The `clickme` command line."""

from pathlib import Path
from typing import Annotated, Any, TypedDict

import typer

from clickme.accounts.cli import app as admin_app
from clickme.alignment.cli import align as align_command
from clickme.alignment.cli import harmonize as harmonize_command
from clickme.campaigns.cli import prepare as prepare_command
from clickme.core.config import get_settings
from clickme.exports.cli import export as export_command
from clickme.images.cli import app as images_app
from clickme.insights.cli import flag as flag_command
from clickme.players.cli import app as players_app

app = typer.Typer(help="ClickMe: a web game in which people teach deep networks how to see.")
db_app = typer.Typer(help="The database: migrations.")
app.add_typer(db_app, name="db")
images_app.command("prepare")(prepare_command)  # a campaign's photos, from the campaigns
app.add_typer(images_app, name="images")
app.add_typer(admin_app, name="admin")
players_app.command("flag")(flag_command)  # the flags are insights
app.add_typer(players_app, name="players")
app.command("export")(export_command)
app.command("align")(align_command)
app.command("harmonize")(harmonize_command)

HostOption = Annotated[str, typer.Option(help="Address to listen on.")]
PortOption = Annotated[int, typer.Option(help="Port to listen on.")]
ImageSetOption = Annotated[
    str | None,
    typer.Option(
        help="Image set the default campaign plays (import it first) [default: the set that "
        "received the latest import]."
    ),
]


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or migrate the database to the latest schema."""
    from clickme.core.migrate import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url, revision)
    typer.echo(f"database at {revision}: {settings.resolved_database_url}")


def prepare_default_campaign(image_set_name: str | None) -> None:
    """Point the default campaign at the named image set, or at the latest imported one."""
    from sqlalchemy import func, inspect, select
    from sqlalchemy.exc import OperationalError

    from clickme.campaigns.service import ensure_default_campaign
    from clickme.core.db import Database
    from clickme.images.models import Image
    from clickme.images.service import find_image_set, latest_image_set
    from clickme.scoring.registry import get_model_spec
    from clickme.scoring.service import ensure_model_row

    settings = get_settings()
    database = Database(settings.resolved_database_url)
    try:
        migrated = inspect(database.engine).has_table("campaigns")
    except OperationalError:
        migrated = False
    if not migrated:
        raise typer.BadParameter("the database is not set up: run `clickme db upgrade` first")
    with database.session() as session:
        if image_set_name is None:
            image_set = latest_image_set(session)
            what = "no image set has images"
        else:
            image_set = find_image_set(session, image_set_name)
            what = f"image set {image_set_name!r} has no images"
        count = session.scalar(
            select(func.count(Image.id)).where(
                Image.image_set_id == (image_set.id if image_set else -1)
            )
        )
        if image_set is None or not count:
            raise typer.BadParameter(
                f"{what}: run `clickme images import DIR` or `clickme images import-demo` first",
                param_hint="--campaign-image-set",
            )
        typer.echo(f"the default campaign plays the image set {image_set.name!r}")
        model = ensure_model_row(session, get_model_spec(settings.model))
        ensure_default_campaign(session, image_set, model)
    database.dispose()


CertFileOption = Annotated[
    Path | None,
    typer.Option(help="Serve HTTPS with this certificate (PEM) [CLICKME_SSL_CERTFILE]."),
]
KeyFileOption = Annotated[
    Path | None,
    typer.Option(help="The certificate's private key (PEM) [CLICKME_SSL_KEYFILE]."),
]


class _TlsOptions(TypedDict, total=False):
    ssl_certfile: str
    ssl_keyfile: str


def _tls_options(certfile: Path | None, keyfile: Path | None) -> _TlsOptions:
    """uvicorn's TLS options from the command's options, else the settings; empty: plain HTTP."""
    settings = get_settings()
    certfile = certfile or settings.ssl_certfile
    keyfile = keyfile or settings.ssl_keyfile
    if keyfile and not certfile:
        raise typer.BadParameter("a key needs its certificate", param_hint="--ssl-certfile")
    for path in (certfile, keyfile):
        if path and not path.is_file():
            raise typer.BadParameter(f"no such file: {path}")
    options: _TlsOptions = {}
    if certfile:
        options["ssl_certfile"] = str(certfile)
    if keyfile:
        options["ssl_keyfile"] = str(keyfile)
    return options


@app.command()
def serve(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    campaign_image_set: ImageSetOption = None,
    ssl_certfile: CertFileOption = None,
    ssl_keyfile: KeyFileOption = None,
) -> None:
    """Start the game server."""
    tls = _tls_options(ssl_certfile, ssl_keyfile)
    prepare_default_campaign(campaign_image_set)
    _run_server(host, port, tls)


def _run_server(host: str, port: int, tls: _TlsOptions) -> None:
    """The game server on the configured database, until it is stopped."""
    import uvicorn

    from clickme.app import create_app
    from clickme.core.logs import configure_logging
    from clickme.core.server import QuietServer, server_options

    settings = get_settings()
    configure_logging(settings.resolved_log_format)
    typer.echo(f"ClickMe is starting: open http{'s' if tls else ''}://{host}:{port}")
    # Requests are logged by the app (one line each, with its id), not by uvicorn; the proxies
    # it trusts are the app's too (CLICKME_FORWARDED_ALLOW_IPS), never uvicorn's default.
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        **tls,
        **server_options(settings),
    )
    QuietServer(config).run()


@app.command()
def demo(host: HostOption = "127.0.0.1", port: PortOption = 8000) -> None:
    """Create the database, load the demo photos and start the game server."""
    from clickme.campaigns.service import DEFAULT_CAMPAIGN_SLUG
    from clickme.core.db import Database
    from clickme.images.service import import_demo_set

    db_upgrade("head")
    settings = get_settings()
    database = Database(settings.resolved_database_url)
    with database.session() as session:
        report = import_demo_set(session, settings.images_dir)
    database.dispose()
    typer.echo(f"demo images: {report.imported} imported, {report.duplicates} already there")
    # As a deployment does (`clickme images prepare`): else a photo's first stroke in a process
    # prepares it, about 20 ms more before the DNN answers.
    prepare_default_campaign("demo")
    prepare_command(campaign=DEFAULT_CAMPAIGN_SLUG)
    _run_server(host, port, _tls_options(None, None))


@app.command()
def worker(
    model: Annotated[str | None, typer.Option(help="Model to serve [CLICKME_MODEL].")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Most images per forward pass [CLICKME_BATCH_MAX_SIZE].")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="onnx or torch [CLICKME_SCORER_BACKEND].")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="Torch device, e.g. cuda:1 [CLICKME_SCORER_DEVICE].")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads, 0: all [CLICKME_SCORER_THREADS].")
    ] = None,
    lanes: Annotated[
        int | None,
        typer.Option(help="Batches scored at once, 0: one per CPU thread [CLICKME_WORKER_LANES]."),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port.")
    ] = None,
) -> None:
    """Score images for the API processes, taken from Redis (one worker per GPU or CPU pool)."""
    from pydantic import ValidationError

    from clickme.core.config import Settings
    from clickme.core.logs import configure_logging
    from clickme.scoring.registry import list_model_specs
    from clickme.scoring.worker import run_worker

    options: dict[str, Any] = {
        "model": model,
        "batch_max_size": batch_size,
        "scorer_backend": backend,
        "scorer_device": device,
        "scorer_threads": threads,
        "worker_lanes": lanes,
    }
    try:
        settings = Settings(**{name: value for name, value in options.items() if value is not None})
    except ValidationError as error:
        raise typer.BadParameter(str(error)) from None
    if not settings.redis_url:
        raise typer.BadParameter("set CLICKME_REDIS_URL: the worker takes its requests from Redis")
    if settings.model not in {spec.name for spec in list_model_specs()}:
        raise typer.BadParameter(f"no registered model {settings.model!r}", param_hint="--model")
    configure_logging(settings.resolved_log_format)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
    run_worker(settings)


if __name__ == "__main__":
    app()
