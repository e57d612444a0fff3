"""Authentication for the gateway: a framework-free domain layer the HTTP routes call.

Start at :class:`~services.gateway.auth.service.AuthService` (one object, one
method per route); every failure is an :class:`~services.gateway.auth.errors.AuthError`
with a stable ``code`` and a suggested HTTP ``status``.

Modules: ``errors`` (failures), ``passwords`` (username/password rules,
Argon2id), ``secretbox`` (AES-GCM sealing of secrets at rest), ``store``
(the store interface and SQLite), ``keys`` (signing keys, rotation, JWKS),
``tokens`` (issuing and verifying JWTs, local or external issuers such as
Cognito), ``mfa`` (TOTP), ``throttle`` (login backoff), ``api_keys``
(HMAC-signed bot requests), ``service`` (the facade).
"""

from services.gateway.auth.api_keys import ApiKeyCreated, ApiKeyInfo, InMemoryReplayCache, ReplayCache, sign_request
from services.gateway.auth.errors import ALL_ERRORS, AuthError, Throttled
from services.gateway.auth.mfa import MfaSetup
from services.gateway.auth.passwords import Argon2Params, PasswordPolicy
from services.gateway.auth.secretbox import SecretBox
from services.gateway.auth.service import Account, AuthService, AuthSettings, bearer_token
from services.gateway.auth.store import AuthStore, SqliteAuthStore
from services.gateway.auth.throttle import BackoffPolicy, InMemoryLoginThrottle, LoginThrottle
from services.gateway.auth.tokens import (
    AccessToken,
    Principal,
    RemoteJwks,
    StaticJwks,
    TrustedIssuer,
    cognito_issuer,
)

__all__ = [
    "ALL_ERRORS",
    "AccessToken",
    "Account",
    "ApiKeyCreated",
    "ApiKeyInfo",
    "Argon2Params",
    "AuthError",
    "AuthService",
    "AuthSettings",
    "AuthStore",
    "BackoffPolicy",
    "InMemoryLoginThrottle",
    "InMemoryReplayCache",
    "LoginThrottle",
    "MfaSetup",
    "PasswordPolicy",
    "Principal",
    "RemoteJwks",
    "ReplayCache",
    "SecretBox",
    "SqliteAuthStore",
    "StaticJwks",
    "Throttled",
    "TrustedIssuer",
    "bearer_token",
    "cognito_issuer",
    "sign_request",
]
