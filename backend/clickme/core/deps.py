"""Typed FastAPI dependencies: settings, database session, the running app's runtime."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from clickme.core.config import Settings
from clickme.core.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.runtime.settings


def get_db_session(request: Request) -> Iterator[Session]:
    """A session for the request; committed when the route returns without error."""
    with request.app.state.runtime.database.session() as session:
        yield session


AppRuntime = Annotated[Runtime, Depends(get_runtime)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]
# scope="function": commit before the response leaves, so nothing is acknowledged uncommitted.
DbSession = Annotated[Session, Depends(get_db_session, scope="function")]
