"""TOTP MFA: setup -> enable -> login requires a code; bad and replayed codes refused."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest

from services.gateway.auth import Argon2Params, AuthService, AuthSettings, SecretBox
from services.gateway.auth.errors import (
    InvalidCredentials,
    InvalidMfaCode,
    MfaAlreadyEnabled,
    MfaCodeReused,
    MfaNotSetUp,
    MfaRequired,
    Throttled,
)
from services.gateway.auth.mfa import Totp

T0 = 1_700_000_010.0  # 10 s into a 30 s step
PASSWORD = "correct-horse-battery"


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(tmp_path: Path, clock: Clock) -> AuthService:
    service = AuthService.open(
        tmp_path / "auth.db", SecretBox.ephemeral(), AuthSettings(argon2=Argon2Params.cheap()), clock=clock
    )
    service.register("alice", PASSWORD)
    return service


def wrong_code(secret: str, t: float) -> str:
    """A well-formed code valid at no step of the accepted window."""
    valid = {Totp.code_at(secret, t + d) for d in (-30, 0, 30)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def enable_mfa(auth: AuthService, clock: Clock) -> str:
    secret = auth.mfa_setup(1).secret
    auth.mfa_enable(1, Totp.code_at(secret, clock.t))
    clock.t += 30  # the enabling code is spent; log in with the next one
    return secret


def test_mfa_setup_returns_a_base32_secret_and_an_otpauth_uri_issued_by_rialto(auth: AuthService) -> None:
    setup = auth.mfa_setup(1)
    assert len(setup.secret) == 32 and pyotp.TOTP(setup.secret).now().isdigit()
    uri = urlparse(setup.otpauth_uri)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == "/Rialto:alice"
    query = parse_qs(uri.query)
    assert query["issuer"] == ["Rialto"] and query["secret"] == [setup.secret]
    assert setup.as_dict() == {"secret": setup.secret, "otpauth_uri": setup.otpauth_uri}


def test_mfa_is_not_required_at_login_while_only_set_up(auth: AuthService) -> None:
    auth.mfa_setup(1)
    assert auth.login("alice", PASSWORD).access_token


def test_mfa_enable_requires_a_valid_code_for_the_pending_secret(auth: AuthService, clock: Clock) -> None:
    secret = auth.mfa_setup(1).secret
    with pytest.raises(InvalidMfaCode) as err:
        auth.mfa_enable(1, wrong_code(secret, clock.t))
    assert err.value.code == "invalid_mfa_code"
    assert auth.login("alice", PASSWORD)  # still not enabled
    auth.mfa_enable(1, Totp.code_at(secret, clock.t))
    user = auth.store.get_user(1)
    assert user is not None and user.mfa_enabled


def test_mfa_enable_before_setup_is_refused(auth: AuthService) -> None:
    with pytest.raises(MfaNotSetUp):
        auth.mfa_enable(1, "123456")


def test_setup_mfa_enable_then_login_requires_the_code(auth: AuthService, clock: Clock) -> None:
    secret = enable_mfa(auth, clock)
    with pytest.raises(MfaRequired) as err:
        auth.login("alice", PASSWORD)
    assert err.value.code == "mfa_required" and err.value.status == 401
    token = auth.login("alice", PASSWORD, totp=Totp.code_at(secret, clock.t))
    assert auth.verify_token(token.access_token).account_id == 1


def test_login_with_a_bad_code_is_invalid_mfa_code(auth: AuthService, clock: Clock) -> None:
    secret = enable_mfa(auth, clock)
    for bad in ("12345", "abcdef", "1234567", "\uff11\uff12\uff13\uff14\uff15\uff16", wrong_code(secret, clock.t)):
        with pytest.raises(InvalidMfaCode) as err:
            auth.login("alice", PASSWORD, totp=bad)
        assert err.value.code == "invalid_mfa_code"


def test_a_wrong_password_with_a_good_code_is_still_invalid_credentials(auth: AuthService, clock: Clock) -> None:
    secret = enable_mfa(auth, clock)
    with pytest.raises(InvalidCredentials):
        auth.login("alice", "wrong-password-here", totp=Totp.code_at(secret, clock.t))


def test_a_replayed_code_is_refused(auth: AuthService, clock: Clock) -> None:
    secret = enable_mfa(auth, clock)
    code = Totp.code_at(secret, clock.t)
    auth.login("alice", PASSWORD, totp=code)
    clock.t += 5
    with pytest.raises(MfaCodeReused) as err:
        auth.login("alice", PASSWORD, totp=code)
    assert err.value.code == "mfa_code_reused" and isinstance(err.value, InvalidMfaCode)


def test_the_code_that_enabled_mfa_cannot_be_used_to_log_in(auth: AuthService, clock: Clock) -> None:
    secret = auth.mfa_setup(1).secret
    code = Totp.code_at(secret, clock.t)
    auth.mfa_enable(1, code)
    with pytest.raises(MfaCodeReused):
        auth.login("alice", PASSWORD, totp=code)


def test_codes_one_step_either_side_are_accepted_but_not_older_than_the_last_used(
    auth: AuthService, clock: Clock
) -> None:
    secret = enable_mfa(auth, clock)
    auth.login("alice", PASSWORD, totp=Totp.code_at(secret, clock.t + 30))  # phone clock 30 s ahead
    with pytest.raises(MfaCodeReused):
        auth.login("alice", PASSWORD, totp=Totp.code_at(secret, clock.t))  # older than the last used
    with pytest.raises(InvalidMfaCode):
        auth.login("alice", PASSWORD, totp=Totp.code_at(secret, clock.t + 60))  # two steps ahead


def test_mfa_setup_is_refused_once_enabled(auth: AuthService, clock: Clock) -> None:
    enable_mfa(auth, clock)
    with pytest.raises(MfaAlreadyEnabled) as err:
        auth.mfa_setup(1)
    assert err.value.status == 409


def test_a_second_setup_replaces_the_pending_secret(auth: AuthService, clock: Clock) -> None:
    first = auth.mfa_setup(1).secret
    second = auth.mfa_setup(1).secret
    assert first != second
    if Totp.code_at(first, clock.t) != Totp.code_at(second, clock.t):
        with pytest.raises(InvalidMfaCode):
            auth.mfa_enable(1, Totp.code_at(first, clock.t))
    auth.mfa_enable(1, Totp.code_at(second, clock.t))


def test_mfa_secrets_are_sealed_at_rest(auth: AuthService) -> None:
    secret = auth.mfa_setup(1).secret
    user = auth.store.get_user(1)
    assert user is not None and user.mfa_secret is not None
    assert secret not in user.mfa_secret and user.mfa_secret.startswith("v1.")


def test_mfa_codes_count_against_the_login_throttle(auth: AuthService, clock: Clock) -> None:
    secret = enable_mfa(auth, clock)
    for _ in range(5):
        with pytest.raises(InvalidMfaCode):
            auth.login("alice", PASSWORD, totp=wrong_code(secret, clock.t), ip="198.51.100.7")
    with pytest.raises(Throttled):
        auth.login("alice", PASSWORD, totp=Totp.code_at(secret, clock.t), ip="198.51.100.7")
