"""Typed FastAPI dependencies: settings, database session, the running app's runtime.

The runtime (``clickme.runtime.Runtime``) is assembled above every domain; each domain sees it
through a protocol of what it reads, in its own ``deps.py``, widening ``CoreRuntime``."""

from collections.abc import Iterator
from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from clickme.core.config import Settings
from clickme.core.db import Database


class CoreRuntime(Protocol):
    """What every domain may read from the runtime: the settings and the database."""

    @property
    def settings(self) -> Settings: ...

    @property
    def database(self) -> Database: ...


async def get_runtime(request: Request) -> CoreRuntime:
    return request.app.state.runtime


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.runtime.settings


def get_db_session(request: Request) -> Iterator[Session]:
    """A session for the request; committed when the route returns without error."""
    with request.app.state.runtime.database.session() as session:
        yield session


# Requests holding a session at once, per process; the others wait on the event loop, not in a
# worker thread. FastAPI validates a sync route's response in the thread pool before the session
# commits, so a finished request keeps its connection until a worker thread is free: with more
# sessions than connections, those requests and routes waiting in every worker thread for a
# connection would block each other until the pool's timeout (500s). Kept below the smallest
# pool (SQLite 8 + 10 overflow, PostgreSQL 10 + 20) to leave connections to the reveals and
# the background threads.
SESSIONS_AT_ONCE = 8

AppSettings = Annotated[Settings, Depends(get_app_settings)]
# scope="function": commit before the response leaves, so nothing is acknowledged uncommitted.
DbSession = Annotated[
    Session, Depends(get_db_session, scope="function", max_concurrency=SESSIONS_AT_ONCE)
]
