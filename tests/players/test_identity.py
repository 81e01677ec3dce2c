"""The player cookie's token: verified answers are kept, and keeping them changes no answer."""

from collections.abc import Iterator

import pytest

from clickme.players import identity
from clickme.players.identity import PlayerToken, sign_player_token, verify_player_token


@pytest.fixture
def signatures(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The player ids whose signature was computed, from a cleared cache on."""
    computed: list[int] = []
    sign = identity._signature

    def counted(secret: str, player_id: int, epoch: int) -> str:
        computed.append(player_id)
        return sign(secret, player_id, epoch)

    verify_player_token.cache_clear()
    monkeypatch.setattr(identity, "_signature", counted)
    yield computed
    verify_player_token.cache_clear()


def test_a_token_seen_before_is_not_signed_again(signatures: list[int]) -> None:
    token = sign_player_token("secret-a", 42, epoch=3)
    signatures.clear()
    for _ in range(3):
        assert verify_player_token("secret-a", token) == PlayerToken(42, 3)
    assert signatures == [42]


def test_kept_answers_are_the_answers(signatures: list[int]) -> None:
    """The same (secret, token) pairs, verified fresh and then kept, in either order."""
    valid = sign_player_token("secret-a", 42)
    later = sign_player_token("secret-a", 42, epoch=3)
    cases = [
        ("secret-a", valid, PlayerToken(42, 0)),
        ("secret-b", valid, None),  # kept for secret-a: not valid for another secret
        ("secret-a", valid.replace("42.", "43."), None),
        ("secret-a", later, PlayerToken(42, 3)),
        ("secret-a", later.replace(".3.", ".2."), None),
        ("secret-a", None, None),
    ]
    for _ in range(2):
        for secret, token, expected in cases:
            assert verify_player_token(secret, token) == expected
        cases.reverse()


def test_the_kept_tokens_are_bounded(signatures: list[int]) -> None:
    assert verify_player_token.cache_info().maxsize == identity.TOKENS_KEPT
    tokens = [sign_player_token("secret-a", n) for n in range(identity.TOKENS_KEPT + 1)]
    for token in tokens:
        verify_player_token("secret-a", token)
    assert verify_player_token.cache_info().currsize == identity.TOKENS_KEPT
    signatures.clear()
    verify_player_token("secret-a", tokens[0])  # the oldest was dropped: signed again
    assert signatures == [0]


def test_the_callers_address_is_kept_as_its_salted_hash() -> None:
    """From the ASGI scope's client (the routes and the game's fast path alike); none: ""."""
    address = identity.scope_ip_hash("secret", {"client": ("203.0.113.7", 5000)})
    assert address == identity.hash_ip("secret", "203.0.113.7") != "203.0.113.7"
    assert address != identity.scope_ip_hash("other", {"client": ("203.0.113.7", 1)})
    assert identity.scope_ip_hash("secret", {"client": None}) == identity.hash_ip("secret", "")
    assert identity.scope_ip_hash("secret", {}) == identity.hash_ip("secret", "")
