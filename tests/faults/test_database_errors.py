"""The database error handler: out of reach is a clear 503 to retry; any other error a 500."""

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from tests.core.test_errors import client_raising

LOST = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
INVALIDATED = DBAPIError("SELECT 1", {}, Exception("closed"), connection_invalidated=True)
BROKEN = IntegrityError("INSERT", {}, Exception("duplicate key"))


@pytest.mark.parametrize("error", [LOST, INVALIDATED], ids=["operational", "invalidated"])
def test_a_database_out_of_reach_is_a_503_to_retry(error: DBAPIError) -> None:
    response = client_raising(error).get("/")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response.headers["Retry-After"] == "5"


def test_other_database_errors_stay_server_errors() -> None:
    assert client_raising(BROKEN).get("/").status_code == 500
