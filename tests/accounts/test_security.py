"""Password hashing with Argon2id; tokens and IP hashes."""

from clickme.accounts import security


def test_passwords_are_hashed_with_argon2id_and_verified() -> None:
    hashed = security.hash_password("a long enough password")
    assert hashed.startswith("$argon2id$") and "a long enough password" not in hashed
    assert security.hash_password("a long enough password") != hashed  # salted
    assert security.verify_password(hashed, "a long enough password")
    assert not security.verify_password(hashed, "a long enough passwort")
    assert not security.verify_password("not a hash", "a long enough password")
    assert not security.needs_rehash(hashed)


def test_tokens_are_random_and_only_their_hash_is_kept() -> None:
    token = security.new_token()
    assert token != security.new_token() and len(token) >= 40
    assert security.token_hash(token) == security.token_hash(token)
    assert token not in security.token_hash(token)
    assert security.tokens_equal(token, token) and not security.tokens_equal(None, token)


def test_ip_hashes_are_salted_by_the_secret() -> None:
    first = security.hash_ip("one secret", "203.0.113.7")
    assert first == security.hash_ip("one secret", "203.0.113.7")
    assert first != security.hash_ip("another secret", "203.0.113.7")
    assert "203.0.113.7" not in first
