"""Staff dependencies: the signed-in staff member, role checks and CSRF on state changes."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Cookie, Depends, Request

from clickme.accounts import security, service
from clickme.accounts.models import StaffSession, StaffUser
from clickme.accounts.schemas import ROLES
from clickme.core.deps import DbSession
from clickme.core.errors import Forbidden, NotSignedIn

STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "X-CSRF-Token"


def current_staff_session(
    session: DbSession, clickme_staff: Annotated[str | None, Cookie()] = None
) -> StaffSession:
    """The staff session of the cookie; 401 when there is none (a player's cookie is none)."""
    staff_session = service.find_session(session, clickme_staff)
    if staff_session is None:
        raise NotSignedIn("not_signed_in", "sign in with a staff account first")
    return staff_session


CurrentStaffSession = Annotated[StaffSession, Depends(current_staff_session)]


def current_staff(staff_session: CurrentStaffSession) -> StaffUser:
    return staff_session.user


def require_role(*roles: str) -> Callable[[Request, StaffSession], StaffUser]:
    """A dependency: a signed-in staff member with one of the roles, CSRF-checked on writes."""
    unknown = set(roles) - set(ROLES)
    if not roles or unknown:
        raise ValueError(f"roles must be among {ROLES}, got {roles}")

    def dependency(request: Request, staff_session: CurrentStaffSession) -> StaffUser:
        if request.method in STATE_CHANGING_METHODS and not security.tokens_equal(
            request.headers.get(CSRF_HEADER), staff_session.csrf_token
        ):
            raise Forbidden("csrf_failed", f"missing or wrong {CSRF_HEADER} header")
        if staff_session.user.role not in roles:
            raise Forbidden("forbidden", "your role does not allow this")
        return staff_session.user

    return dependency


CurrentStaff = Annotated[StaffUser, Depends(current_staff)]
AdminUser = Annotated[StaffUser, Depends(require_role("admin"))]
StaffMember = Annotated[StaffUser, Depends(require_role("admin", "researcher"))]
