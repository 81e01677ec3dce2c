"""The app factory: API routes, the game's static files, and the runtime's lifecycle."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from clickme import __version__
from clickme.accounts.routes import admin_users_router
from clickme.accounts.routes import router as staff_router
from clickme.alignment.jobs import AlignmentJobs
from clickme.alignment.routes import jobs_router as admin_alignment_jobs_router
from clickme.alignment.routes import router as admin_alignment_router
from clickme.campaigns.routes import public_router as campaigns_router
from clickme.campaigns.routes import router as admin_campaigns_router
from clickme.core.config import Settings, get_settings
from clickme.core.db import Database
from clickme.core.errors import ERROR_RESPONSES, install_error_handlers
from clickme.core.head import HeadAsGet
from clickme.core.https import HttpsOnly
from clickme.core.limits import BodySizeLimit
from clickme.core.security_headers import SecurityHeaders
from clickme.core.shared_store import ThreadsConnections, connect_redis
from clickme.exports.jobs import ExportJobs
from clickme.exports.routes import router as admin_exports_router
from clickme.game.fast_path import GameFastPath
from clickme.game.leaderboard import leaderboard_store
from clickme.game.routes import admin_router as admin_rounds_router
from clickme.game.routes import router as game_router
from clickme.images.labels import load_labels
from clickme.images.routes import UPLOAD_PATH
from clickme.images.routes import admin_router as admin_image_sets_router
from clickme.images.routes import router as images_router
from clickme.insights.routes import players_router as admin_players_router
from clickme.insights.routes import public_router as completion_router
from clickme.insights.routes import router as campaign_pictures_router
from clickme.ops import RequestObserver
from clickme.ops import router as ops_router
from clickme.players.ratelimit import rate_limiter
from clickme.players.routes import router as players_router
from clickme.runtime import Runtime
from clickme.scoring.answers import running_loop
from clickme.scoring.registry import get_model_spec
from clickme.scoring.remote import open_scorer
from clickme.scoring.reveal import PreparedImageCache
from clickme.scoring.routes import router as admin_models_router
from clickme.scoring.scorer import Scorer

FRONTEND_DIR = Path(__file__).resolve().parents[2] / "frontend"
# FastAPI's native OpenTelemetry, off unless ``CLICKME_OPENTELEMETRY``: when on, each request
# asks the global providers whether any is configured (about 0.1 ms of the event loop after an
# idle pause, for nothing when none is); the requests' own metrics and log lines are ClickMe's.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def load_scorer(settings: Settings) -> Scorer:
    """The configured default DNN: its workers' queue (remote scoring) or loaded here, warm."""
    return open_scorer(settings, get_model_spec(settings.model))


def build_runtime(settings: Settings, scorer: Scorer | None = None) -> Runtime:
    """Open the database, load the DNN (unless one is given) and the image cache; rate limits
    and the leaderboard in Redis when configured (a thread that uses both keeps one connection
    for them), else in this process. Built on the app's event loop, the scorers' answers are
    read on it."""
    database = Database(settings.resolved_database_url)
    redis = connect_redis(settings)
    commands = None if redis is None else ThreadsConnections(redis)
    prefix = settings.redis_key_prefix
    return Runtime(
        settings=settings,
        database=database,
        scorer=scorer or load_scorer(settings),
        owns_scorer=scorer is None,
        loop=running_loop(),
        images=PreparedImageCache(settings.image_cache_size, settings.prepared_dir),
        redis=redis,
        limiter=rate_limiter(redis, prefix, commands),
        leaderboard=leaderboard_store(redis, prefix, database, commands),
    )


def _close(app: FastAPI) -> None:
    app.state.alignment_jobs.close()
    app.state.export_jobs.close()
    app.state.runtime.close()


def create_app(settings: Settings | None = None, scorer: Scorer | None = None) -> FastAPI:
    """The ASGI app; a given scorer is shared (tests, benchmarks) and left open at shutdown."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = build_runtime(settings, scorer)
        load_labels()
        app.state.export_jobs = ExportJobs.start(app.state.runtime.database, settings)
        app.state.alignment_jobs = AlignmentJobs.start(app.state.runtime.database, settings)
        try:
            yield
        finally:  # off the loop: a job's last wait for the DNN is answered on it
            await asyncio.to_thread(_close, app)

    app = FastAPI(
        title="ClickMe",
        version=__version__,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        telemetry=None if settings.opentelemetry else NO_TELEMETRY,
    )
    install_error_handlers(app)
    app.add_middleware(GameFastPath)  # innermost: inside the observer, headers and limits
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        path_limits={UPLOAD_PATH: settings.max_upload_bytes},
    )
    app.add_middleware(HttpsOnly, production=settings.environment == "production")
    app.add_middleware(
        SecurityHeaders,
        production=settings.environment == "production",
        game_frame_ancestors=settings.frame_ancestors,
    )
    app.add_middleware(HeadAsGet)
    app.add_middleware(RequestObserver)  # times and logs every request
    if settings.trusted_proxies:  # outermost: the client's address and scheme as the proxy saw
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    app.include_router(ops_router)
    app.include_router(players_router)
    app.include_router(admin_players_router)
    app.include_router(game_router)
    app.include_router(admin_rounds_router)
    app.include_router(images_router)
    app.include_router(admin_image_sets_router)
    app.include_router(admin_models_router)
    app.include_router(campaigns_router)
    app.include_router(completion_router)
    app.include_router(admin_campaigns_router)
    app.include_router(campaign_pictures_router)
    app.include_router(staff_router)
    app.include_router(admin_users_router)
    app.include_router(admin_exports_router)
    app.include_router(admin_alignment_router)
    app.include_router(admin_alignment_jobs_router)

    @app.get("/", include_in_schema=False)
    async def game_page() -> FileResponse:
        return FileResponse(FRONTEND_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/admin", include_in_schema=False)
    async def admin_console() -> FileResponse:
        return FileResponse(
            FRONTEND_DIR / "admin" / "index.html", headers={"Cache-Control": "no-cache"}
        )

    app.mount("/static", StaticFiles(directory=FRONTEND_DIR), name="static")
    return app
