"""Every way authentication can fail: one exception class per failure, each with a stable code.

The gateway maps any :class:`AuthError` to its single error shape with
:meth:`AuthError.body` and :attr:`AuthError.status`; :class:`Throttled` also
carries ``retry_after`` (whole seconds, for the ``Retry-After`` header).

Messages are safe to show to the caller: they never say whether a username
exists or which half of a credential was wrong.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar


class AuthError(Exception):
    """Base class. ``code`` is the machine-readable reason, ``status`` the suggested HTTP status."""

    code: ClassVar[str] = "auth_error"
    status: int = 401
    default_message: ClassVar[str] = "authentication failed"

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        self.message = message or self.default_message
        if status is not None:
            self.status = status
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        """The gateway's error shape: ``{"error": {"code": ..., "message": ...}}``."""
        return {"error": {"code": self.code, "message": self.message}}

    def headers(self) -> dict[str, str]:
        """Extra response headers this failure calls for (``Retry-After``, ``WWW-Authenticate``)."""
        return {}


# -- registration -------------------------------------------------------------------------


class InvalidUsername(AuthError):
    code = "invalid_username"
    status = 422
    default_message = "invalid username"


class WeakPassword(AuthError):
    code = "weak_password"
    status = 422
    default_message = "password does not meet the rules"


class UsernameTaken(AuthError):
    code = "username_taken"
    status = 409
    default_message = "username is already taken"


# -- login --------------------------------------------------------------------------------


class InvalidCredentials(AuthError):
    code = "invalid_credentials"
    default_message = "invalid username or password"


class MfaRequired(AuthError):
    code = "mfa_required"
    default_message = "a one-time code (totp) is required for this account"


class InvalidMfaCode(AuthError):
    code = "invalid_mfa_code"
    default_message = "invalid one-time code"


class MfaCodeReused(InvalidMfaCode):
    code = "mfa_code_reused"
    default_message = "this one-time code was already used; wait for the next one"


class MfaNotSetUp(AuthError):
    code = "mfa_not_set_up"
    status = 409
    default_message = "call MFA setup before enabling it"


class MfaAlreadyEnabled(AuthError):
    code = "mfa_already_enabled"
    status = 409
    default_message = "MFA is already enabled for this account"


class Throttled(AuthError):
    code = "throttled"
    status = 429
    default_message = "too many attempts; retry later"

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(message or f"too many attempts; retry in {self.retry_after} s")

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class LocalLoginDisabled(AuthError):
    code = "local_login_disabled"
    status = 404
    default_message = "this venue authenticates with an external identity provider"


class AccountNotFound(AuthError):
    code = "account_not_found"
    status = 404
    default_message = "no such account"


# -- bearer tokens ------------------------------------------------------------------------


class TokenInvalid(AuthError):
    code = "token_invalid"
    default_message = "invalid access token"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class TokenExpired(AuthError):
    code = "token_expired"
    default_message = "access token has expired"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="expired"'}


class UnknownAccount(AuthError):
    """A valid external token whose subject maps to no venue account."""

    code = "unknown_account"
    status = 403
    default_message = "the token's subject has no account on this venue"


# -- signed API requests ------------------------------------------------------------------


class UnknownApiKey(AuthError):
    code = "unknown_api_key"
    default_message = "unknown API key"


class ApiKeyRevoked(AuthError):
    code = "api_key_revoked"
    default_message = "this API key has been revoked"


class InvalidSignature(AuthError):
    code = "invalid_signature"
    default_message = "request signature does not match"


class InvalidTimestamp(AuthError):
    code = "invalid_timestamp"
    default_message = "X-Rialto-Timestamp must be an integer number of milliseconds since the Unix epoch"


class StaleTimestamp(AuthError):
    code = "stale_timestamp"
    default_message = "request timestamp is outside the accepted window"


class ReplayedRequest(AuthError):
    code = "replayed_request"
    default_message = "this signed request was already received"


class TooManyApiKeys(AuthError):
    code = "too_many_api_keys"
    status = 409
    default_message = "revoke an API key before creating another"


ALL_ERRORS: tuple[type[AuthError], ...] = (
    InvalidUsername,
    WeakPassword,
    UsernameTaken,
    InvalidCredentials,
    MfaRequired,
    InvalidMfaCode,
    MfaCodeReused,
    MfaNotSetUp,
    MfaAlreadyEnabled,
    Throttled,
    LocalLoginDisabled,
    AccountNotFound,
    TokenInvalid,
    TokenExpired,
    UnknownAccount,
    UnknownApiKey,
    ApiKeyRevoked,
    InvalidSignature,
    InvalidTimestamp,
    StaleTimestamp,
    ReplayedRequest,
    TooManyApiKeys,
)
"""Every concrete failure, for the gateway's OpenAPI error table and for tests."""
