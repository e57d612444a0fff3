"""Registration and password login: rules, Argon2id hashing, rehash on login, unknown users."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.gateway.auth import Argon2Params, AuthService, AuthSettings, SecretBox
from services.gateway.auth.errors import InvalidCredentials, InvalidUsername, UsernameTaken, WeakPassword
from services.gateway.auth.passwords import PasswordHasher, validate_password, validate_username

T0 = 1_700_000_000.0
PASSWORD = "correct-horse-battery"


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_service(tmp_path: Path, clock: Clock | None = None, **settings: Any) -> AuthService:
    settings.setdefault("argon2", Argon2Params.cheap())
    return AuthService.open(
        tmp_path / "auth.db", SecretBox.ephemeral(), AuthSettings(**settings), clock=clock or Clock()
    )


def test_register_then_login_issues_a_bearer_token_for_the_new_account(tmp_path: Path) -> None:
    auth = make_service(tmp_path)
    account = auth.register("Alice", PASSWORD)
    token = auth.login("alice", PASSWORD, ip="198.51.100.7")
    assert account.account_id == 1 and account.username == "Alice"
    assert token.as_dict()["token_type"] == "Bearer"
    assert token.expires_in == 900
    assert auth.verify_token(token.access_token).account_id == 1


def test_account_ids_are_allocated_from_one_upward(tmp_path: Path) -> None:
    auth = make_service(tmp_path)
    ids = [auth.register(f"trader{i}", PASSWORD).account_id for i in range(3)]
    assert ids == [1, 2, 3]


def test_login_with_wrong_password_is_invalid_credentials(tmp_path: Path) -> None:
    auth = make_service(tmp_path)
    auth.register("alice", PASSWORD)
    with pytest.raises(InvalidCredentials) as err:
        auth.login("alice", PASSWORD + "x")
    assert err.value.code == "invalid_credentials" and err.value.status == 401


def test_login_with_unknown_user_is_invalid_credentials_after_a_dummy_argon2_check(tmp_path: Path) -> None:
    auth = make_service(tmp_path)
    calls: list[str] = []
    real = auth.hasher.verify

    def spy(password_hash: str, password: str) -> bool:
        calls.append(password_hash)
        return real(password_hash, password)

    auth.hasher.verify = spy  # type: ignore[method-assign]
    with pytest.raises(InvalidCredentials) as unknown:
        auth.login("nobody", PASSWORD)
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")  # same work as a wrong password
    auth.register("alice", PASSWORD)
    with pytest.raises(InvalidCredentials) as wrong:
        auth.login("alice", "not-the-password-at-all")
    assert unknown.value.body() == wrong.value.body()  # indistinguishable answers


def test_duplicate_username_is_refused_case_insensitively(tmp_path: Path) -> None:
    auth = make_service(tmp_path)
    auth.register("Alice", PASSWORD)
    for spelling in ("alice", "ALICE", " aLiCe "):
        with pytest.raises(UsernameTaken) as err:
            auth.register(spelling, PASSWORD)
        assert err.value.code == "username_taken" and err.value.status == 409


def test_login_username_is_case_insensitive(tmp_path: Path) -> None:
    auth = make_service(tmp_path)
    auth.register("Alice", PASSWORD)
    assert auth.verify_token(auth.login("ALICE", PASSWORD).access_token).account_id == 1


@pytest.mark.parametrize(
    ("username", "reason"),
    [
        ("ab", "3 to 32 characters"),
        ("a" * 33, "3 to 32 characters"),
        ("al ice", "ASCII letters"),
        ("alicé", "ASCII letters"),
        ("_alice", "start and end"),
        ("alice.", "start and end"),
        ("admin", "reserved"),
    ],
)
def test_invalid_usernames_are_refused_with_the_rule_they_break(username: str, reason: str) -> None:
    with pytest.raises(InvalidUsername) as err:
        validate_username(username)
    assert reason in err.value.message and err.value.code == "invalid_username"


def test_usernames_may_use_letters_digits_dot_underscore_dash() -> None:
    assert validate_username("  Bot_01.eu-west  ") == "Bot_01.eu-west"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-pw", "at least 12"),
        ("x" * 257, "at most 256"),
        ("tab\there-is-bad", "control characters"),
        ("abababababababab", "different characters"),
        ("my-name-is-alice!", "username"),
        ("Password1234", "too common"),
    ],
)
def test_weak_passwords_are_refused_with_the_rule_they_break(password: str, reason: str) -> None:
    with pytest.raises(WeakPassword) as err:
        validate_password(password, "alice")
    assert reason in err.value.message and err.value.code == "weak_password" and err.value.status == 422


def test_long_passphrases_with_spaces_and_unicode_are_accepted() -> None:
    validate_password("grüne äpfel fallen nie weit")


def test_register_refuses_a_weak_password_before_creating_the_account(tmp_path: Path) -> None:
    auth = make_service(tmp_path)
    with pytest.raises(WeakPassword):
        auth.register("alice", "short")
    assert auth.store.get_user_by_username("alice") is None


def test_passwords_are_stored_as_argon2id_hashes_with_the_configured_cost(tmp_path: Path) -> None:
    auth = make_service(tmp_path)
    auth.register("alice", PASSWORD)
    user = auth.store.get_user_by_username("alice")
    assert user is not None
    assert user.password_hash.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert PASSWORD not in user.password_hash


def test_login_rehashes_the_password_when_argon2_parameters_change(tmp_path: Path) -> None:
    clock = Clock()
    box = SecretBox.ephemeral()
    old = AuthService.open(tmp_path / "auth.db", box, AuthSettings(argon2=Argon2Params.cheap()), clock=clock)
    old.register("alice", PASSWORD)
    old.close()
    stronger = Argon2Params(time_cost=2, memory_cost=16, parallelism=1)
    new = AuthService.open(tmp_path / "auth.db", box, AuthSettings(argon2=stronger), clock=clock)
    new.login("alice", PASSWORD)
    user = new.store.get_user_by_username("alice")
    assert user is not None and user.password_hash.startswith("$argon2id$v=19$m=16,t=2,p=1$")
    new.login("alice", PASSWORD)  # the upgraded hash still verifies


def test_passwords_are_compared_after_unicode_nfkc_normalization() -> None:
    hasher = PasswordHasher(Argon2Params.cheap())
    stored = hasher.hash("ﬁne-ligature-passphrase")  # U+FB01 LATIN SMALL LIGATURE FI
    assert hasher.verify(stored, "fine-ligature-passphrase")


def test_a_corrupt_stored_hash_fails_closed() -> None:
    hasher = PasswordHasher(Argon2Params.cheap())
    assert hasher.verify("not-a-hash", PASSWORD) is False
    assert hasher.needs_rehash("not-a-hash") is True
