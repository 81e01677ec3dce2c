"""Text other people see (display names, campaign texts, exclusion reasons) is NFKC-normalised
and holds no control, format, line or paragraph separator characters: one validator for all."""

from typing import Annotated

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select

from clickme.core.db import Database
from clickme.core.schemas import ShownText
from clickme.images.models import ImageSet
from clickme.scoring.tables import DnnModel
from tests.accounts.staff import add_staff_user, staff_headers

HIDDEN = {
    "CR": "\r",
    "LF": "\n",
    "TAB": "\t",
    "bidi override": "\u202e",
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "BOM": "\ufeff",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "NUL": "\x00",
}


@pytest.mark.parametrize("character", HIDDEN.values(), ids=HIDDEN.keys())
def test_hidden_characters_are_refused(character: str) -> None:
    for multiline in (False, True):
        if character in "\r\n" and multiline:
            continue
        with pytest.raises(ValidationError):
            TypeAdapter(Annotated[str, ShownText(multiline=multiline)]).validate_python(
                f"Ada{character}Lovelace"
            )


def test_normalised_to_nfkc_before_the_constraints() -> None:
    name = TypeAdapter(Annotated[str, ShownText(max_length=3, pattern=r"^[^<>]+$")])
    assert name.validate_python("\uff21\uff44\uff41") == "Ada"  # full-width letters
    assert name.validate_python("\ufb01") == "fi"  # the ligature
    with pytest.raises(ValidationError):
        name.validate_python("\uff1cb\uff1e")  # full-width < and > are < and >


def test_multiline_text_keeps_line_feeds_only() -> None:
    long_text = TypeAdapter(Annotated[str, ShownText(multiline=True)])
    assert long_text.validate_python("one\r\ntwo\rthree\nfour") == "one\ntwo\nthree\nfour"
    with pytest.raises(ValidationError):
        long_text.validate_python("one\ttwo")


@pytest.fixture
def admin(database: Database) -> dict[str, str]:
    add_staff_user(database, "admin@example.org", "admin")
    return staff_headers(database, "admin@example.org")


@pytest.mark.parametrize("character", HIDDEN.values(), ids=HIDDEN.keys())
def test_display_names_refuse_hidden_characters(player: TestClient, character: str) -> None:
    response = player.patch("/api/players/me", json={"display_name": f"Ada{character}x"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"


def test_display_names_are_normalised(player: TestClient) -> None:
    response = player.patch("/api/players/me", json={"display_name": "\uff21\uff44\uff41"})
    assert response.status_code == 200 and response.json()["display_name"] == "Ada"


def test_campaign_texts_and_exclusion_reasons_refuse_hidden_characters(
    client: TestClient, database: Database, admin: dict[str, str]
) -> None:
    player_id = client.post("/api/players", json={"consent": True}).json()["id"]
    client.cookies.clear()
    with database.session() as session:
        image_set_id = session.scalar(select(ImageSet.id).where(ImageSet.name == "demo"))
        model_id = session.scalar(select(DnnModel.id))
    campaign = {"slug": "study", "image_set_id": image_set_id, "model_id": model_id}
    for field in ("name", "consent_text", "instructions_text", "completion_code"):
        body = {"name": "Study", **campaign, field: "Study\u202e1"}
        response = client.post("/api/admin/campaigns", json=body, headers=admin)
        assert response.status_code == 422, (field, response.text)
    created = client.post(
        "/api/admin/campaigns",
        json={"name": "\uff33tudy", **campaign, "consent_text": "Agree?\r\nYes."},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "Study" and created.json()["consent_text"] == "Agree?\nYes."
    path = f"/api/admin/players/{player_id}/exclude"
    refused = client.post(path, json={"reason": "bot\u2028farm"}, headers=admin)
    assert refused.status_code == 422, refused.text
    assert client.post(path, json={"reason": "bot farm"}, headers=admin).status_code == 201
