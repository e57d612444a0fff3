"""The one object the gateway's routes call: :class:`AuthService`.

Each route is one call plus error mapping::

    POST /v1/auth/register     auth.register(username, password)            -> Account.as_dict()
    POST /v1/auth/login        auth.login(username, password, totp, ip)     -> AccessToken.as_dict()
    POST /v1/auth/mfa/setup    auth.mfa_setup(principal.account_id)         -> MfaSetup.as_dict()
    POST /v1/auth/mfa/enable   auth.mfa_enable(principal.account_id, code)
    POST /v1/api-keys          auth.create_api_key(principal.account_id)    -> ApiKeyCreated.as_dict()
    GET  /v1/api-keys          auth.list_api_keys(principal.account_id)
    DELETE /v1/api-keys/{id}   auth.revoke_api_key(principal.account_id, key_id)
    GET  /.well-known/jwks.json  auth.jwks()
    any authenticated route    auth.authenticate(headers, method, path_with_query, body)  -> Principal

Every failure is an :class:`~services.gateway.auth.errors.AuthError`: answer
``exc.status`` with ``exc.body()`` and ``exc.headers()`` (``Retry-After`` for
``throttled``).

Threading: everything is synchronous and thread-safe. ``register`` and
``login`` run Argon2 (deliberately tens of milliseconds of CPU): call them
with ``await asyncio.to_thread(...)`` so the event loop keeps serving. The
rest are fast (an indexed store statement, an AES-GCM decrypt, a signature
check) and can be called inline; with a :class:`~.tokens.RemoteJwks` issuer,
a bearer check may occasionally wait for a JWKS fetch (see there).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.gateway.auth.api_keys import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    ApiKeyCreated,
    ApiKeyInfo,
    ApiKeys,
    ReplayCache,
)
from services.gateway.auth.errors import (
    AccountNotFound,
    InvalidCredentials,
    LocalLoginDisabled,
    MfaRequired,
    Throttled,
    TokenInvalid,
    UsernameTaken,
)
from services.gateway.auth.keys import KeyRing
from services.gateway.auth.mfa import MfaSetup, Totp
from services.gateway.auth.passwords import (
    Argon2Params,
    PasswordHasher,
    PasswordPolicy,
    normalize_username,
    validate_password,
    validate_username,
)
from services.gateway.auth.secretbox import SecretBox
from services.gateway.auth.store import AuthStore, SqliteAuthStore
from services.gateway.auth.throttle import InMemoryLoginThrottle, LoginThrottle
from services.gateway.auth.tokens import AccessToken, Principal, TokenIssuer, TokenVerifier, TrustedIssuer, local_issuer


@dataclass(frozen=True)
class AuthSettings:
    """Configuration. Times are seconds."""

    issuer: str = "rialto"
    """``iss`` of the venue's own tokens: in production the gateway's public base URL."""
    audience: str = "rialto-api"
    access_token_ttl: int = 900
    signing_algorithm: str = "EdDSA"
    key_rotation: int = 24 * 3600
    clock_leeway: int = 30
    argon2: Argon2Params = field(default_factory=Argon2Params)
    password_policy: PasswordPolicy = field(default_factory=PasswordPolicy)
    totp_valid_window: int = 1
    api_signature_window: int = 30
    max_api_keys_per_user: int = 20
    local_login: bool = True
    """False when an external issuer (Cognito) replaces the built-in one: register and login are
    refused and the venue's own tokens are no longer accepted."""
    external_issuers: tuple[TrustedIssuer, ...] = ()


@dataclass(frozen=True)
class Account:
    account_id: int
    username: str

    def as_dict(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "username": self.username}


def bearer_token(authorization: str | None) -> str:
    """The token from an ``Authorization: Bearer <token>`` header value."""
    if not authorization:
        raise TokenInvalid("missing Authorization: Bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenInvalid("Authorization header must be 'Bearer <token>'")
    return token.strip()


class AuthService:
    def __init__(
        self,
        store: AuthStore,
        box: SecretBox,
        settings: AuthSettings | None = None,
        *,
        throttle: LoginThrottle | None = None,
        replay_cache: ReplayCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        s = settings or AuthSettings()
        self.settings = s
        self.store = store
        self.clock = clock
        self.hasher = PasswordHasher(s.argon2)
        self.throttle: LoginThrottle = throttle if throttle is not None else InMemoryLoginThrottle(clock=clock)
        self.keyring = KeyRing(
            store,
            box,
            algorithm=s.signing_algorithm,
            rotate_after=s.key_rotation,
            verify_for=s.access_token_ttl + s.clock_leeway,
            clock=clock,
        )
        self.issuer = TokenIssuer(self.keyring, s.issuer, s.audience, ttl=s.access_token_ttl, clock=clock)
        trusted = list(s.external_issuers)
        if s.local_login:
            trusted.insert(0, local_issuer(self.keyring, s.issuer, s.audience, leeway=s.clock_leeway))
        self.verifier = TokenVerifier(trusted, store, clock=clock)
        self.totp = Totp(store, box, valid_window=s.totp_valid_window, clock=clock)
        self.api_keys = ApiKeys(
            store,
            box,
            window=s.api_signature_window,
            max_active_per_user=s.max_api_keys_per_user,
            replay_cache=replay_cache,
            clock=clock,
        )

    @classmethod
    def with_store(
        cls, store: AuthStore, box: SecretBox, settings: AuthSettings | None = None, **kwargs: Any,
    ) -> AuthService:
        """An :class:`AuthService` over any store (an assembly's choice: SQLite, PostgreSQL, ...).

        ``kwargs`` are the keyword-only arguments of the constructor (``throttle``,
        ``replay_cache``, ``clock``); the service owns the store from here (``close``).
        """
        return cls(store, box, settings, **kwargs)

    @classmethod
    def open(cls, path: str | Path, box: SecretBox, settings: AuthSettings | None = None, **kwargs: Any) -> AuthService:
        """An :class:`AuthService` over the SQLite file at ``path`` (created if missing)."""
        return cls.with_store(SqliteAuthStore(path), box, settings, **kwargs)

    def close(self) -> None:
        self.store.close()

    def _now(self, now: float | None) -> float:
        return self.clock() if now is None else now

    # -- accounts -------------------------------------------------------------------------------

    def register(self, username: str, password: str, now: float | None = None) -> Account:
        """Create an account (slow: Argon2). ``invalid_username``, ``weak_password``, ``username_taken``."""
        if not self.settings.local_login:
            raise LocalLoginDisabled()
        name = validate_username(username)
        validate_password(password, name, self.settings.password_policy)
        norm = normalize_username(name)
        if self.store.get_user_by_username(norm) is not None:
            raise UsernameTaken()  # checked first to spare an Argon2 hash; the UNIQUE index decides races
        user = self.store.create_user(name, norm, self.hasher.hash(password), int(self._now(now)))
        return Account(user.id, user.username)

    def login(
        self,
        username: str,
        password: str,
        totp: str | None = None,
        ip: str | None = None,
        now: float | None = None,
    ) -> AccessToken:
        """Check credentials (slow: Argon2) and issue an access token.

        Failures: ``throttled`` (with ``retry_after``), ``invalid_credentials``
        (unknown user and wrong password alike, in the same time),
        ``mfa_required``, ``invalid_mfa_code``, ``mfa_code_reused``.
        """
        if not self.settings.local_login:
            raise LocalLoginDisabled()
        t = self._now(now)
        if not isinstance(username, str) or not isinstance(password, str):
            raise InvalidCredentials()
        wait = self.throttle.acquire(username, ip, t)
        if wait > 0:
            raise Throttled(wait)
        if len(password) > 4 * self.settings.password_policy.max_length:
            raise InvalidCredentials()
        user = self.store.get_user_by_username(normalize_username(username))
        if user is None:
            self.hasher.verify_dummy(password)
            raise InvalidCredentials()
        if not self.hasher.verify(user.password_hash, password):
            raise InvalidCredentials()
        if user.mfa_enabled:
            if not totp:
                raise MfaRequired()
            self.totp.check(user, totp, t)
        if self.hasher.needs_rehash(user.password_hash):
            self.store.set_password_hash(user.id, self.hasher.hash(password))
        self.throttle.succeeded(username, ip, t)
        return self.issuer.issue(user.id, t)

    def account(self, account_id: int) -> Account:
        user = self.store.get_user(account_id)
        if user is None:
            raise AccountNotFound()
        return Account(user.id, user.username)

    # -- MFA ------------------------------------------------------------------------------------

    def mfa_setup(self, account_id: int) -> MfaSetup:
        return self.totp.setup(account_id)

    def mfa_enable(self, account_id: int, code: str, now: float | None = None) -> None:
        self.totp.enable(account_id, code, self._now(now))

    # -- tokens ---------------------------------------------------------------------------------

    def issue_token(self, account_id: int, now: float | None = None) -> AccessToken:
        return self.issuer.issue(account_id, self._now(now))

    def verify_token(self, token: str, now: float | None = None) -> Principal:
        return self.verifier.verify(token, self._now(now))

    def jwks(self, now: float | None = None) -> dict[str, Any]:
        """The document for ``/.well-known/jwks.json`` (empty key list when local login is off)."""
        if not self.settings.local_login:
            return {"keys": []}
        return self.keyring.jwks(self._now(now))

    def link_external_identity(self, issuer: str, subject: str, account_id: int, now: float | None = None) -> None:
        """Map an external issuer's ``sub`` to a venue account (for issuers without an account claim)."""
        self.store.link_external_identity(issuer, subject, account_id, int(self._now(now)))

    # -- API keys -------------------------------------------------------------------------------

    def create_api_key(self, account_id: int, now: float | None = None) -> ApiKeyCreated:
        return self.api_keys.create(account_id, self._now(now))

    def list_api_keys(self, account_id: int) -> list[ApiKeyInfo]:
        return self.api_keys.list_keys(account_id)

    def revoke_api_key(self, account_id: int, key_id: str, now: float | None = None) -> None:
        self.api_keys.revoke(account_id, key_id, self._now(now))

    def verify_signed_request(
        self,
        key_id: str | None,
        timestamp: str | None,
        signature: str | None,
        method: str,
        path: str,
        body: bytes,
        now: float | None = None,
    ) -> Principal:
        return self.api_keys.verify(key_id, timestamp, signature, method, path, body, self._now(now))

    # -- one entry point for authenticated routes --------------------------------------------

    def authenticate(
        self,
        headers: Mapping[str, str],
        method: str,
        path: str,
        body: bytes = b"",
        now: float | None = None,
    ) -> Principal:
        """A signed API request if ``X-Rialto-Key`` is present, else a bearer token.

        ``headers`` is looked up case-insensitively (a plain dict or Starlette's
        ``request.headers``); ``path`` includes ``?query`` when there is one.
        """
        lowered = {k.lower(): v for k, v in headers.items()}
        key_id = lowered.get(HEADER_KEY.lower())
        if key_id is not None:
            return self.verify_signed_request(
                key_id,
                lowered.get(HEADER_TIMESTAMP.lower()),
                lowered.get(HEADER_SIGNATURE.lower()),
                method,
                path,
                body,
                now,
            )
        return self.verify_token(bearer_token(lowered.get("authorization")), now)
