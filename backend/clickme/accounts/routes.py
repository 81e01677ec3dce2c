"""Staff routes: login, logout, who am I; and the admins' account management."""

from typing import Annotated

from fastapi import APIRouter, Cookie, Path, Request, Response

from clickme.accounts import security, service
from clickme.accounts.deps import AdminUser, CurrentStaffSession, StaffMember
from clickme.accounts.schemas import (
    LoginIn,
    StaffMe,
    StaffUserCreate,
    StaffUserOut,
    StaffUserUpdate,
)
from clickme.core.config import Settings
from clickme.core.deps import AppSettings, DbSession
from clickme.core.errors import ClickmeError

router = APIRouter(prefix="/api/staff", tags=["staff"])
admin_users_router = APIRouter(prefix="/api/admin/users", tags=["admin"])

UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _set_staff_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        security.STAFF_COOKIE,
        token,
        max_age=int(service.SESSION_LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.environment == "production",
    )


@router.post("/login")
def login(
    body: LoginIn,
    request: Request,
    response: Response,
    session: DbSession,
    settings: AppSettings,
    clickme_staff: Annotated[str | None, Cookie()] = None,
) -> StaffMe:
    """Sign in: a new session (the browser's previous one is closed), its cookie and CSRF token."""
    client_ip = request.client.host if request.client else "unknown"
    ip_hash = security.hash_ip(settings.resolved_secret_key(), client_ip)
    try:
        user = service.authenticate(session, body.email, body.password, ip_hash)
    except ClickmeError:
        session.commit()  # keep the recorded failure although the request is refused
        raise
    service.close_session(session, clickme_staff)
    opened = service.open_session(session, user)
    _set_staff_cookie(response, settings, opened.token)
    return StaffMe(email=user.email, role=user.role, csrf_token=opened.row.csrf_token)


@router.post("/logout", status_code=204)
def logout(
    _staff: StaffMember, staff_session: CurrentStaffSession, session: DbSession, response: Response
) -> None:
    session.delete(staff_session)
    response.delete_cookie(security.STAFF_COOKIE, path="/", httponly=True, samesite="strict")


@router.get("/me")
def read_me(staff: StaffMember, staff_session: CurrentStaffSession) -> StaffMe:
    return StaffMe(email=staff.email, role=staff.role, csrf_token=staff_session.csrf_token)


@admin_users_router.get("")
def list_users(_admin: AdminUser, session: DbSession) -> list[StaffUserOut]:
    return service.list_users(session)


@admin_users_router.post("", status_code=201)
def create_user(body: StaffUserCreate, _admin: AdminUser, session: DbSession) -> StaffUserOut:
    user = service.create_user(session, body)
    return StaffUserOut.model_validate(user, from_attributes=True)


@admin_users_router.patch("/{user_id}")
def update_user(
    user_id: UserId, body: StaffUserUpdate, _admin: AdminUser, session: DbSession
) -> StaffUserOut:
    user = service.update_user(session, user_id, body)
    return StaffUserOut.model_validate(user, from_attributes=True)
