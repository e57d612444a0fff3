"""Access tokens: issuing the venue's own JWTs and verifying them, or an external issuer's.

Issuing
-------
:class:`TokenIssuer` signs short-lived access tokens (default 15 min) with the
:class:`~services.gateway.auth.keys.KeyRing`'s current key. Header:
``{"alg": "EdDSA", "kid": ..., "typ": "at+jwt"}`` (RFC 9068); claims: ``iss``,
``aud``, ``sub`` (the account id in decimal), ``iat``, ``nbf``, ``exp``, ``jti``.

Verifying
---------
:class:`TokenVerifier` trusts one or more :class:`TrustedIssuer` s. For each
token it:

1. parses the header and reads the (still unverified) ``iss`` only to choose
   which trusted issuer's rules apply; an unknown issuer is refused;
2. refuses any ``alg`` outside that issuer's pinned list. Only asymmetric
   algorithms can be configured, so ``none`` and ``HS256`` (including the
   "HMAC keyed with the public key" confusion) are always refused;
3. looks the ``kid`` up in that issuer's key source (unknown ``kid``
   refused) and requires the key's type, and its declared ``alg`` if any, to
   match the header's ``alg``;
4. verifies the signature with PyJWT, pinned to that single algorithm;
5. only then checks the claims against ``now``: ``exp`` (``token_expired``),
   ``nbf`` and ``iat`` not in the future, ``iss`` exact, the audience,
   optionally ``token_use`` and ``typ``, with ``leeway`` seconds of clock skew;
6. maps the claims to an account id: a claim holding it (``sub`` for the
   venue's own tokens, ``custom:account_id`` for a Cognito user pool), or the
   store's ``(issuer, sub) -> account`` table.

Replacing the built-in issuer by a Cognito user pool is configuration: build
the verifier with :func:`cognito_issuer` (issuer URL, JWKS document or URL,
app client id) instead of, or next to, :func:`local_issuer`.

Claim times are checked here rather than by PyJWT so that ``now`` can be
passed in (tests, and one clock for the whole request).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from services.gateway.auth.errors import TokenExpired, TokenInvalid, UnknownAccount
from services.gateway.auth.keys import SIGNING_ALGORITHMS, KeyRing
from services.gateway.auth.store import AuthStore

ASYMMETRIC_ALGORITHMS = frozenset(
    {"EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)
MAX_TOKEN_LENGTH = 8192

VerifyKey = ed25519.Ed25519PublicKey | rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class AccessToken:
    access_token: str
    expires_in: int
    token_type: str = "Bearer"

    def as_dict(self) -> dict[str, Any]:
        """The login response body: ``{access_token, token_type, expires_in}``."""
        return {"access_token": self.access_token, "token_type": self.token_type, "expires_in": self.expires_in}


@dataclass(frozen=True)
class Principal:
    """Who a request acts for, once authenticated."""

    account_id: int
    via: str
    """``"token"`` or ``"api_key"``."""
    issuer: str | None = None
    subject: str | None = None
    token_id: str | None = None
    expires_at: int | None = None
    api_key_id: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


# -- key sources ------------------------------------------------------------------------------


class KeySource(Protocol):
    """Where a trusted issuer's public keys come from."""

    def lookup(self, kid: str, now: float) -> tuple[str | None, VerifyKey] | None:
        """``(declared alg or None, public key)`` for ``kid``, or None if unknown."""
        ...


class KeyRingKeys:
    """The venue's own keys."""

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def lookup(self, kid: str, now: float) -> tuple[str | None, VerifyKey] | None:
        key = self.keyring.verification_key(kid, now)
        return None if key is None else (key.algorithm, key.public_key)


def parse_jwks(document: Mapping[str, Any] | str | bytes) -> dict[str, tuple[str | None, VerifyKey]]:
    """``kid -> (alg, public key)`` for the usable signing keys of a JWKS document.

    Keys without ``kid``, with ``use`` other than ``sig``, of symmetric type
    (``oct``) or that PyJWT cannot load are skipped.
    """
    if isinstance(document, str | bytes):
        document = json.loads(document)
    assert isinstance(document, Mapping)
    keys: dict[str, tuple[str | None, VerifyKey]] = {}
    for jwk in document.get("keys", []):
        if not isinstance(jwk, Mapping):
            continue
        kid, kty, alg = jwk.get("kid"), jwk.get("kty"), jwk.get("alg")
        if not isinstance(kid, str) or kty not in ("RSA", "EC", "OKP") or jwk.get("use", "sig") != "sig":
            continue
        if alg is not None and alg not in ASYMMETRIC_ALGORITHMS:
            continue
        try:
            key = jwt.PyJWK(dict(jwk)).key
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
        if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            key = key.public_key()  # a JWKS should hold public keys only; never keep a private one around
        if isinstance(key, ed25519.Ed25519PublicKey | rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            keys[kid] = (alg, key)
    return keys


class StaticJwks:
    """A JWKS document given in configuration (or a test's locally generated one)."""

    def __init__(self, document: Mapping[str, Any] | str | bytes) -> None:
        self._keys = parse_jwks(document)

    def lookup(self, kid: str, now: float) -> tuple[str | None, VerifyKey] | None:
        return self._keys.get(kid)


def _https_fetch(url: str, timeout: float) -> bytes:
    if not url.startswith("https://"):
        raise ValueError(f"JWKS URL must be https: {url}")
    with urllib.request.urlopen(url, timeout=timeout) as response:  # https only: checked above
        body: bytes = response.read(1 << 20)
        return body


class RemoteJwks:
    """A JWKS fetched from a URL (a Cognito user pool's ``/.well-known/jwks.json``) and cached.

    The document is refetched when older than ``ttl`` or when a token names an
    unknown ``kid`` (the issuer rotated), at most once per
    ``min_refresh_interval`` so that made-up ``kid`` s cannot make the gateway
    hammer the issuer. A failed fetch keeps the keys it had.

    A fetch blocks for up to ``timeout`` seconds: call :meth:`refresh` at
    start-up and from a background task (in a thread) so that requests
    rarely wait for one.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 3600.0,
        min_refresh_interval: float = 60.0,
        timeout: float = 5.0,
        fetch: Callable[[str, float], bytes] = _https_fetch,
    ) -> None:
        self.url = url
        self.ttl = ttl
        self.min_refresh_interval = min_refresh_interval
        self.timeout = timeout
        self._fetch = fetch
        self._keys: dict[str, tuple[str | None, VerifyKey]] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = threading.RLock()
        self.last_error: Exception | None = None

    def refresh(self, now: float | None = None) -> bool:
        """Fetch the document now; True if it was fetched and parsed."""
        t = time.time() if now is None else now
        with self._lock:
            self._attempted_at = t
            try:
                keys = parse_jwks(self._fetch(self.url, self.timeout))
            except Exception as exc:  # network, HTTP, JSON: keep serving the keys we have
                self.last_error = exc
                return False
            self._keys, self._fetched_at, self.last_error = keys, t, None
            return True

    def _wants_refresh(self, kid: str, now: float) -> bool:
        stale = self._fetched_at is None or now - self._fetched_at >= self.ttl
        may_retry = self._attempted_at is None or now - self._attempted_at >= self.min_refresh_interval
        return (stale or kid not in self._keys) and may_retry

    def lookup(self, kid: str, now: float) -> tuple[str | None, VerifyKey] | None:
        if self._wants_refresh(kid, now):
            with self._lock:  # one fetch at a time; threads that waited see its result
                if self._wants_refresh(kid, now):
                    self.refresh(now)
        return self._keys.get(kid)


# -- issuers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustedIssuer:
    """What the verifier accepts from one issuer.

    ``audience`` must appear in one of ``audience_claims`` (``aud`` may be a
    string or a list). The account id comes from ``account_claim`` if set and
    present, else from the store's ``(issuer, sub)`` mapping if
    ``map_subjects``; otherwise the token is refused with ``unknown_account``.
    """

    issuer: str
    keys: KeySource
    audience: str
    algorithms: tuple[str, ...] = ("RS256",)
    audience_claims: tuple[str, ...] = ("aud",)
    account_claim: str | None = None
    map_subjects: bool = False
    token_use: str | None = None
    expected_typ: str | None = None
    leeway: int = 30

    def __post_init__(self) -> None:
        if not self.algorithms:
            raise ValueError("a trusted issuer needs at least one algorithm")
        bad = [a for a in self.algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if bad:
            raise ValueError(f"refusing to trust algorithms {bad}: only asymmetric signatures are accepted")
        if not self.issuer or not self.audience:
            raise ValueError("a trusted issuer needs an issuer and an audience")


def local_issuer(keyring: KeyRing, issuer: str, audience: str, *, leeway: int = 30) -> TrustedIssuer:
    """The venue's own tokens, as :class:`TokenIssuer` makes them."""
    return TrustedIssuer(
        issuer=issuer,
        keys=KeyRingKeys(keyring),
        audience=audience,
        algorithms=SIGNING_ALGORITHMS,
        account_claim="sub",
        expected_typ="at+jwt",
        leeway=leeway,
    )


def cognito_issuer(
    region: str,
    user_pool_id: str,
    app_client_id: str,
    *,
    jwks: Mapping[str, Any] | str | bytes | None = None,
    token_use: str | None = "access",
    account_claim: str | None = "custom:account_id",
    map_subjects: bool = True,
    issuer: str | None = None,
    fetch: Callable[[str, float], bytes] | None = None,
) -> TrustedIssuer:
    """A Cognito user pool: RS256, issuer ``https://cognito-idp.<region>.amazonaws.com/<pool>``.

    Access tokens carry the app client id in ``client_id`` (they have no
    ``aud``), ID tokens in ``aud``; both claims are accepted. ``jwks`` given
    pins the key set; otherwise it is fetched from the pool's well-known URL.
    ``issuer`` overrides the URL (a local Cognito emulator, tests).
    """
    iss = issuer or f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
    keys: KeySource
    if jwks is not None:
        keys = StaticJwks(jwks)
    elif fetch is not None:
        keys = RemoteJwks(f"{iss}/.well-known/jwks.json", fetch=fetch)
    else:
        keys = RemoteJwks(f"{iss}/.well-known/jwks.json")
    return TrustedIssuer(
        issuer=iss,
        keys=keys,
        audience=app_client_id,
        algorithms=("RS256",),
        audience_claims=("aud", "client_id"),
        account_claim=account_claim,
        map_subjects=map_subjects,
        token_use=token_use,
    )


# -- issuing -------------------------------------------------------------------------------------


class TokenIssuer:
    """Signs the venue's access tokens with the key ring's current key."""

    def __init__(
        self,
        keyring: KeyRing,
        issuer: str,
        audience: str,
        *,
        ttl: int = 900,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl <= 0:
            raise ValueError("token ttl must be positive")
        self.keyring = keyring
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self.clock = clock

    def issue(self, account_id: int, now: float | None = None) -> AccessToken:
        t = int(self.clock() if now is None else now)
        key = self.keyring.signing_key(t)
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(account_id),
            "iat": t,
            "nbf": t,
            "exp": t + self.ttl,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid, "typ": "at+jwt"})
        return AccessToken(access_token=token, expires_in=self.ttl)


# -- verifying ------------------------------------------------------------------------------------


def _key_fits(alg: str, key: VerifyKey) -> bool:
    if alg == "EdDSA":
        return isinstance(key, ed25519.Ed25519PublicKey)
    if alg.startswith(("RS", "PS")):
        return isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048
    if alg.startswith("ES"):
        return isinstance(key, ec.EllipticCurvePublicKey)
    return False


def _number(claims: Mapping[str, Any], name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenInvalid(f"token has no {name} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenInvalid(f"token's {name} claim is not a number")
    return float(value)


def _account_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        account = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        account = int(value)
    else:
        return None
    return account if account >= 1 else None


class TokenVerifier:
    """Verifies bearer tokens from the trusted issuers. Thread-safe; synchronous.

    With only local issuers and static key sets it does no I/O beyond an
    occasional indexed store lookup; a :class:`RemoteJwks` may fetch (see there).
    """

    def __init__(
        self,
        issuers: Sequence[TrustedIssuer],
        store: AuthStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not issuers:
            raise ValueError("trust at least one issuer")
        self._issuers = {i.issuer: i for i in issuers}
        if len(self._issuers) != len(issuers):
            raise ValueError("two trusted issuers share an issuer string")
        if store is None and any(i.map_subjects for i in issuers):
            raise ValueError("mapping subjects to accounts needs the store")
        self.store = store
        self.clock = clock
        # Tokens whose signature checked out: token -> (issuer, kid, key, claims). A token is
        # immutable, so its signature never needs checking twice; the key's validity now and
        # the time claims are still checked on every use.
        self._verified: dict[str, tuple[TrustedIssuer, str, Any, dict[str, Any]]] = {}

    VERIFIED_CACHE = 10_000

    def verify(self, token: str, now: float | None = None) -> Principal:
        """The principal a valid token stands for; :class:`TokenInvalid`, :class:`TokenExpired` or
        :class:`UnknownAccount` otherwise."""
        t = self.clock() if now is None else now
        cached = self._verified.get(token) if isinstance(token, str) else None
        if cached is not None:
            cached_issuer, cached_kid, cached_key, cached_claims = cached
            current = cached_issuer.keys.lookup(cached_kid, t)
            if current is not None and (current[1] is cached_key or current[1] == cached_key):
                return self._check_claims(cached_issuer, cached_claims, t)
            self._verified.pop(token, None)  # its key was retired or replaced: verify afresh
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise TokenInvalid("malformed token")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (jwt.PyJWTError, ValueError, TypeError):
            raise TokenInvalid("malformed token") from None

        iss = unverified.get("iss")
        trusted = self._issuers.get(iss) if isinstance(iss, str) else None
        if trusted is None:
            raise TokenInvalid("token issuer is not trusted")

        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in trusted.algorithms:
            raise TokenInvalid(f"token algorithm {alg!r} is not accepted")
        if "crit" in header:
            raise TokenInvalid("token has critical header extensions this verifier does not understand")
        if trusted.expected_typ is not None and header.get("typ") != trusted.expected_typ:
            raise TokenInvalid(f"token type must be {trusted.expected_typ}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenInvalid("token has no key id (kid)")
        found = trusted.keys.lookup(kid, t)
        if found is None:
            raise TokenInvalid("token is signed with an unknown key")
        declared_alg, key = found
        if (declared_alg is not None and declared_alg != alg) or not _key_fits(alg, key):
            raise TokenInvalid("token algorithm does not match its key")

        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                    "verify_sub": False,
                    "verify_jti": False,
                },
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            raise TokenInvalid("token signature is invalid") from None

        principal = self._check_claims(trusted, claims, t)
        if len(self._verified) >= self.VERIFIED_CACHE:
            self._verified.pop(next(iter(self._verified)), None)
        self._verified[token] = (trusted, kid, key, claims)
        return principal

    def _check_claims(self, trusted: TrustedIssuer, claims: dict[str, Any], now: float) -> Principal:
        leeway = trusted.leeway
        exp = _number(claims, "exp", required=True)
        iat = _number(claims, "iat", required=True)
        nbf = _number(claims, "nbf", required=False)
        assert exp is not None and iat is not None
        if now >= exp + leeway:
            raise TokenExpired()
        if nbf is not None and now + leeway < nbf:
            raise TokenInvalid("token is not valid yet")
        if now + leeway < iat:
            raise TokenInvalid("token was issued in the future")
        if claims.get("iss") != trusted.issuer:
            raise TokenInvalid("token issuer is not trusted")

        audience_ok = False
        for name in trusted.audience_claims:
            value = claims.get(name)
            if value == trusted.audience or (isinstance(value, list) and trusted.audience in value):
                audience_ok = True
                break
        if not audience_ok:
            raise TokenInvalid("token is not meant for this venue (audience)")
        if trusted.token_use is not None and claims.get("token_use") != trusted.token_use:
            raise TokenInvalid(f"token_use must be {trusted.token_use}")

        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise TokenInvalid("token has no subject")

        account: int | None = None
        if trusted.account_claim is not None and trusted.account_claim in claims:
            account = _account_id(claims[trusted.account_claim])
            if account is None:
                raise TokenInvalid(f"token's {trusted.account_claim} is not an account id")
        elif trusted.map_subjects and self.store is not None:
            account = self.store.find_external_identity(trusted.issuer, subject)
        if account is None:
            raise UnknownAccount()

        jti = claims.get("jti")
        return Principal(
            account_id=account,
            via="token",
            issuer=trusted.issuer,
            subject=subject,
            token_id=jti if isinstance(jti, str) else None,
            expires_at=int(exp),
            claims=claims,
        )
