"""Access tokens: what is refused (forged, expired, alg=none, HS256 confusion, unknown kid, ...),
key rotation and the JWKS, and verification against an external (Cognito-like) issuer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import RSAAlgorithm

from services.gateway.auth import (
    Argon2Params,
    AuthService,
    AuthSettings,
    RemoteJwks,
    SecretBox,
    StaticJwks,
    TrustedIssuer,
    cognito_issuer,
)
from services.gateway.auth.errors import LocalLoginDisabled, TokenExpired, TokenInvalid, UnknownAccount
from services.gateway.auth.tokens import TokenVerifier

T0 = 1_700_000_000.0
PASSWORD = "correct-horse-battery"
REGION, POOL, CLIENT = "eu-west-1", "eu-west-1_AbCdEf123", "3n4b5urk1ft4fl3mg5e62d9ado"
COGNITO_ISS = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL}"


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_service(path: Path, clock: Clock, box: SecretBox | None = None, **settings: Any) -> AuthService:
    settings.setdefault("argon2", Argon2Params.cheap())
    return AuthService.open(path / "auth.db", box or SecretBox.ephemeral(), AuthSettings(**settings), clock=clock)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    h, p, s = token.split(".")
    return json.loads(unb64url(h)), json.loads(unb64url(p)), s


def assemble(header: dict[str, Any], payload: dict[str, Any], signature: str = "") -> str:
    h = b64url(json.dumps(header).encode())
    p = b64url(json.dumps(payload).encode())
    return f"{h}.{p}.{signature}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(tmp_path: Path, clock: Clock) -> AuthService:
    service = make_service(tmp_path, clock)
    service.register("alice", PASSWORD)
    service.register("mallory", PASSWORD)
    return service


def test_tokens_are_eddsa_jwts_with_kid_typ_and_the_account_as_subject(auth: AuthService) -> None:
    token = auth.login("alice", PASSWORD).access_token
    header, claims, _ = parts(token)
    assert header["alg"] == "EdDSA" and header["typ"] == "at+jwt"
    assert header["kid"] == auth.jwks()["keys"][0]["kid"]
    assert claims["sub"] == "1" and claims["iss"] == "rialto" and claims["aud"] == "rialto-api"
    assert claims["exp"] - claims["iat"] == 900 and claims["jti"]
    principal = auth.verify_token(token)
    assert (principal.account_id, principal.via, principal.token_id) == (1, "token", claims["jti"])


def test_a_token_with_a_tampered_payload_and_the_original_signature_is_refused(auth: AuthService) -> None:
    header, claims, signature = parts(auth.login("mallory", PASSWORD).access_token)
    claims["sub"] = "1"  # mallory tries to become alice
    with pytest.raises(TokenInvalid, match="signature"):
        auth.verify_token(assemble(header, claims, signature))


def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(auth: AuthService) -> None:
    header, claims, _ = parts(auth.login("alice", PASSWORD).access_token)
    forged = jwt.encode(claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=header)
    with pytest.raises(TokenInvalid, match="signature") as err:
        auth.verify_token(forged)
    assert err.value.code == "token_invalid" and err.value.status == 401


def test_an_expired_token_is_refused_as_token_expired(auth: AuthService, clock: Clock) -> None:
    token = auth.login("alice", PASSWORD).access_token
    clock.t += 900 + 29  # within the 30 s leeway: still accepted
    auth.verify_token(token)
    clock.t += 1
    with pytest.raises(TokenExpired) as err:
        auth.verify_token(token)
    assert err.value.code == "token_expired"
    assert "expired" in err.value.headers()["WWW-Authenticate"]


def test_a_forged_token_is_reported_invalid_not_expired(auth: AuthService, clock: Clock) -> None:
    header, claims, signature = parts(auth.login("alice", PASSWORD).access_token)
    claims["jti"] = "other"
    clock.t += 10_000
    with pytest.raises(TokenInvalid):
        auth.verify_token(assemble(header, claims, signature))


def test_a_token_not_valid_yet_or_issued_in_the_future_is_refused(auth: AuthService, clock: Clock) -> None:
    token = auth.issue_token(1, now=clock.t + 120).access_token
    with pytest.raises(TokenInvalid, match="not valid yet"):
        auth.verify_token(token)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_an_unsigned_alg_none_token_is_refused(auth: AuthService, alg: str) -> None:
    header, claims, _ = parts(auth.login("alice", PASSWORD).access_token)
    header["alg"] = alg
    with pytest.raises(TokenInvalid, match="algorithm"):
        auth.verify_token(assemble(header, claims, ""))


def test_alg_none_made_by_pyjwt_itself_is_refused(auth: AuthService) -> None:
    _, claims, _ = parts(auth.login("alice", PASSWORD).access_token)
    kid = auth.jwks()["keys"][0]["kid"]
    token = jwt.encode(claims, "", algorithm="none", headers={"kid": kid, "typ": "at+jwt"})
    with pytest.raises(TokenInvalid):
        auth.verify_token(token)


def test_hs256_signed_with_the_public_key_as_secret_is_refused(auth: AuthService) -> None:
    """The classic key-confusion attack: HMAC keyed with the (public) verification key, in every form
    an attacker could find it (JWKS x, raw bytes, PEM)."""
    header, claims, _ = parts(auth.login("mallory", PASSWORD).access_token)
    claims["sub"] = "1"
    header["alg"] = "HS256"
    jwk = auth.jwks()["keys"][0]
    public = auth.keyring.verification_key(jwk["kid"])
    assert public is not None
    pem = public.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for secret in (jwk["x"].encode(), unb64url(jwk["x"]), pem, json.dumps(jwk).encode()):
        unsigned = assemble(header, claims)
        mac = hmac.new(secret, unsigned[:-1].encode(), hashlib.sha256).digest()
        with pytest.raises(TokenInvalid, match="algorithm"):
            auth.verify_token(unsigned + b64url(mac))


def test_a_token_with_an_unknown_kid_is_refused(auth: AuthService) -> None:
    header, claims, _ = parts(auth.login("alice", PASSWORD).access_token)
    header["kid"] = "20231114-doesnotexist"
    forged = jwt.encode(claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=header)
    with pytest.raises(TokenInvalid, match="unknown key"):
        auth.verify_token(forged)


def test_a_token_without_kid_is_refused(auth: AuthService) -> None:
    header, claims, signature = parts(auth.login("alice", PASSWORD).access_token)
    del header["kid"]
    with pytest.raises(TokenInvalid, match="kid"):
        auth.verify_token(assemble(header, claims, signature))


@pytest.mark.parametrize(
    ("claim", "value", "reason"),
    [("iss", "https://evil.example", "issuer"), ("aud", "someone-else", "audience")],
)
def test_a_validly_signed_token_for_another_issuer_or_audience_is_refused(
    auth: AuthService, clock: Clock, claim: str, value: str, reason: str
) -> None:
    header, claims, _ = parts(auth.login("alice", PASSWORD).access_token)
    claims[claim] = value
    key = auth.keyring.signing_key()
    resigned = jwt.encode(claims, key.private_key, algorithm="EdDSA", headers=header)
    with pytest.raises(TokenInvalid, match=reason):
        auth.verify_token(resigned)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "a.b", "x" * 9000, "Bearer x.y.z"])
def test_malformed_tokens_are_refused(auth: AuthService, garbage: str) -> None:
    with pytest.raises(TokenInvalid):
        auth.verify_token(garbage)


def test_authenticate_reads_the_bearer_authorization_header(auth: AuthService) -> None:
    token = auth.login("alice", PASSWORD).access_token
    assert auth.authenticate({"Authorization": f"Bearer {token}"}, "GET", "/v1/orders").account_id == 1
    with pytest.raises(TokenInvalid, match="missing"):
        auth.authenticate({}, "GET", "/v1/orders")
    with pytest.raises(TokenInvalid, match="Bearer"):
        auth.authenticate({"authorization": f"Basic {token}"}, "GET", "/v1/orders")


# -- rotation and JWKS ----------------------------------------------------------------------------


def test_key_rotation_keeps_old_tokens_valid_until_expiry_and_the_jwks_lists_both_keys(
    auth: AuthService, clock: Clock
) -> None:
    old_token = auth.login("alice", PASSWORD).access_token
    old_kid = parts(old_token)[0]["kid"]
    clock.t += 24 * 3600 - 60  # the old token was issued 60 s before rotation is due
    late_old_token = auth.issue_token(1).access_token
    clock.t += 60
    new_token = auth.login("alice", PASSWORD).access_token
    new_kid = parts(new_token)[0]["kid"]
    assert new_kid != old_kid and parts(late_old_token)[0]["kid"] == old_kid

    assert [k["kid"] for k in auth.jwks()["keys"]] == [new_kid, old_kid]
    assert auth.verify_token(late_old_token).account_id == 1
    assert auth.verify_token(new_token).account_id == 1

    clock.t += 900  # the last token the old key signed has expired (exp + 30 s leeway) ...
    with pytest.raises(TokenExpired):
        auth.verify_token(late_old_token)
    assert len(auth.jwks()["keys"]) == 2
    clock.t += 89  # ... and one token lifetime + leeway + the 60 s recheck after its retirement, the old key
    assert len(auth.jwks()["keys"]) == 2
    clock.t += 1  # leaves the JWKS
    assert [k["kid"] for k in auth.jwks()["keys"]] == [new_kid]
    with pytest.raises(TokenInvalid, match="unknown key"):
        auth.verify_token(late_old_token)


def test_a_retired_key_is_deleted_at_the_next_rotation_after_its_window(auth: AuthService, clock: Clock) -> None:
    auth.login("alice", PASSWORD)
    first = auth.keyring.signing_key().kid
    clock.t += 24 * 3600
    auth.keyring.signing_key()
    clock.t += 24 * 3600
    auth.keyring.signing_key()
    kids = [r.kid for r in auth.store.list_signing_keys()]
    assert first not in kids and len(kids) == 2


def test_the_jwks_holds_public_keys_only(auth: AuthService) -> None:
    (key,) = auth.jwks()["keys"]
    assert set(key) == {"kty", "crv", "x", "kid", "use", "alg"}
    assert (key["kty"], key["crv"], key["use"], key["alg"]) == ("OKP", "Ed25519", "sig", "EdDSA")


def test_a_token_verifies_with_nothing_but_the_published_jwks(tmp_path: Path) -> None:
    """What any other service (or an API gateway) does with /.well-known/jwks.json (PyJWT checks exp
    against the real clock here)."""
    auth = make_service(tmp_path, Clock(time.time()))
    auth.register("alice", PASSWORD)
    token = auth.login("alice", PASSWORD).access_token
    kid = parts(token)[0]["kid"]
    (jwk,) = [k for k in auth.jwks()["keys"] if k["kid"] == kid]
    claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["EdDSA"], audience="rialto-api", issuer="rialto")
    assert claims["sub"] == "1"


def test_rs256_signing_can_be_configured(tmp_path: Path, clock: Clock) -> None:
    auth = make_service(tmp_path, clock, signing_algorithm="RS256")
    auth.register("alice", PASSWORD)
    token = auth.login("alice", PASSWORD).access_token
    assert parts(token)[0]["alg"] == "RS256"
    assert auth.jwks()["keys"][0]["kty"] == "RSA"
    assert auth.verify_token(token).account_id == 1


def test_a_second_gateway_process_on_the_same_store_verifies_and_adopts_the_key(tmp_path: Path, clock: Clock) -> None:
    box = SecretBox.ephemeral()
    first = make_service(tmp_path, clock, box)
    first.register("alice", PASSWORD)
    token = first.login("alice", PASSWORD).access_token
    second = make_service(tmp_path, clock, box)
    assert second.verify_token(token).account_id == 1
    assert second.keyring.signing_key().kid == first.keyring.signing_key().kid


def test_an_early_rotation_by_one_process_is_adopted_by_the_others_within_a_minute(
    tmp_path: Path, clock: Clock
) -> None:
    box = SecretBox.ephemeral()
    first, second = make_service(tmp_path, clock, box), make_service(tmp_path, clock, box)
    first.register("alice", PASSWORD)
    old_kid = second.keyring.signing_key().kid
    new_kid = first.keyring.rotate().kid  # an operator rotates early, through one process
    clock.t += 59
    token_signed_late_with_old_key = second.issue_token(1).access_token
    assert parts(token_signed_late_with_old_key)[0]["kid"] == old_kid
    clock.t += 1
    assert second.keyring.signing_key().kid == new_kid
    clock.t += 900  # the late old-key token stays verifiable for its whole life, everywhere
    assert first.verify_token(token_signed_late_with_old_key).account_id == 1


def test_signing_keys_are_sealed_at_rest(auth: AuthService) -> None:
    auth.login("alice", PASSWORD)
    (record,) = auth.store.list_signing_keys()
    assert record.private_key.startswith("v1.ephemeral.") and "PRIVATE KEY" not in record.private_key


# -- external issuers (Cognito-like) ---------------------------------------------------------------


class FakeCognito:
    """A locally generated stand-in for a Cognito user pool: RSA keys, a JWKS, access tokens."""

    def __init__(self) -> None:
        self.keys = {"cognito-kid-1": rsa.generate_private_key(public_exponent=65537, key_size=2048)}

    def jwks(self) -> dict[str, Any]:
        docs = []
        for kid, key in self.keys.items():
            jwk = dict(RSAAlgorithm.to_jwk(key.public_key(), as_dict=True))
            jwk.update(kid=kid, alg="RS256", use="sig")
            docs.append(jwk)
        return {"keys": docs}

    def access_token(self, now: float, kid: str = "cognito-kid-1", **claims: Any) -> str:
        body = {
            "sub": "5f1c2a3e-0000-4000-8000-1234567890ab",
            "iss": COGNITO_ISS,
            "client_id": CLIENT,
            "token_use": "access",
            "scope": "aws.cognito.signin.user.admin",
            "auth_time": int(now),
            "iat": int(now),
            "exp": int(now) + 3600,
            "jti": "c0ffee",
            "username": "alice",
        }
        body.update(claims)
        return jwt.encode(body, self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="module")
def cognito() -> FakeCognito:
    return FakeCognito()


def test_an_external_cognito_like_issuer_is_verified_with_its_jwks_and_account_claim(
    tmp_path: Path, clock: Clock, cognito: FakeCognito
) -> None:
    issuer = cognito_issuer(REGION, POOL, CLIENT, jwks=cognito.jwks())
    auth = make_service(tmp_path, clock, external_issuers=(issuer,))
    principal = auth.verify_token(cognito.access_token(clock.t, **{"custom:account_id": "42"}))
    assert (principal.account_id, principal.issuer) == (42, COGNITO_ISS)
    assert principal.subject == "5f1c2a3e-0000-4000-8000-1234567890ab"


def test_an_external_subject_maps_to_an_account_through_the_store(
    tmp_path: Path, clock: Clock, cognito: FakeCognito
) -> None:
    auth = make_service(tmp_path, clock, external_issuers=(cognito_issuer(REGION, POOL, CLIENT, jwks=cognito.jwks()),))
    account = auth.register("alice", PASSWORD)
    token = cognito.access_token(clock.t)
    with pytest.raises(UnknownAccount) as err:
        auth.verify_token(token)
    assert err.value.code == "unknown_account" and err.value.status == 403
    auth.link_external_identity(COGNITO_ISS, "5f1c2a3e-0000-4000-8000-1234567890ab", account.account_id)
    assert auth.verify_token(token).account_id == account.account_id


@pytest.mark.parametrize(
    ("claims", "error", "reason"),
    [
        ({"client_id": "another-app"}, TokenInvalid, "audience"),
        ({"token_use": "id"}, TokenInvalid, "token_use"),
        ({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"}, TokenInvalid, "issuer"),
        ({"exp": int(T0) - 60}, TokenExpired, "expired"),
        ({"custom:account_id": "alice"}, TokenInvalid, "account"),
        ({"custom:account_id": "0"}, TokenInvalid, "account"),
    ],
)
def test_external_tokens_with_wrong_claims_are_refused(
    tmp_path: Path, clock: Clock, cognito: FakeCognito, claims: dict[str, Any], error: type[Exception], reason: str
) -> None:
    auth = make_service(tmp_path, clock, external_issuers=(cognito_issuer(REGION, POOL, CLIENT, jwks=cognito.jwks()),))
    token = cognito.access_token(clock.t, **{"custom:account_id": "7", **claims})
    with pytest.raises(error, match=reason):
        auth.verify_token(token)


def test_an_external_token_signed_by_a_key_outside_its_jwks_is_refused(
    tmp_path: Path, clock: Clock, cognito: FakeCognito
) -> None:
    auth = make_service(tmp_path, clock, external_issuers=(cognito_issuer(REGION, POOL, CLIENT, jwks=cognito.jwks()),))
    impostor = FakeCognito()  # same kid, different key
    with pytest.raises(TokenInvalid, match="signature"):
        auth.verify_token(impostor.access_token(clock.t, **{"custom:account_id": "7"}))


def test_an_external_issuer_can_replace_the_built_in_one(tmp_path: Path, clock: Clock, cognito: FakeCognito) -> None:
    box = SecretBox.ephemeral()
    local = make_service(tmp_path, clock, box)
    local.register("alice", PASSWORD)
    local_token = local.login("alice", PASSWORD).access_token
    local.close()
    external = make_service(
        tmp_path,
        clock,
        box,
        local_login=False,
        external_issuers=(cognito_issuer(REGION, POOL, CLIENT, jwks=cognito.jwks()),),
    )
    with pytest.raises(TokenInvalid, match="issuer"):
        external.verify_token(local_token)
    with pytest.raises(LocalLoginDisabled):
        external.login("alice", PASSWORD)
    assert external.jwks() == {"keys": []}
    assert external.verify_token(cognito.access_token(clock.t, **{"custom:account_id": "1"})).account_id == 1


def test_a_remote_jwks_is_refetched_for_an_unknown_kid_at_most_once_a_minute(
    clock: Clock, cognito: FakeCognito
) -> None:
    fetches: list[str] = []
    document = {"doc": cognito.jwks()}

    def fetch(url: str, timeout: float) -> bytes:
        fetches.append(url)
        return json.dumps(document["doc"]).encode()

    issuer = cognito_issuer(REGION, POOL, CLIENT, fetch=fetch, map_subjects=False)
    assert isinstance(issuer.keys, RemoteJwks)
    verifier = TokenVerifier([issuer], clock=clock)
    assert verifier.verify(cognito.access_token(clock.t, **{"custom:account_id": "7"})).account_id == 7
    assert fetches == [f"{COGNITO_ISS}/.well-known/jwks.json"]

    cognito.keys["cognito-kid-2"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rotated = cognito.access_token(clock.t, kid="cognito-kid-2", **{"custom:account_id": "7"})
    with pytest.raises(TokenInvalid, match="unknown key"):  # the pool rotated, but we fetched < 60 s ago
        verifier.verify(rotated)
    clock.t += 60
    document["doc"] = cognito.jwks()
    assert verifier.verify(rotated).account_id == 7
    assert len(fetches) == 2
    _, claims, _ = parts(rotated)
    for n in range(5):  # made-up kids do not make us hammer the issuer
        made_up = jwt.encode(claims, cognito.keys["cognito-kid-1"], algorithm="RS256", headers={"kid": f"made-up-{n}"})
        with pytest.raises(TokenInvalid, match="unknown key"):
            verifier.verify(made_up)
    assert len(fetches) == 2


def test_trusted_issuers_accept_only_asymmetric_algorithms() -> None:
    for algorithms in (("HS256",), ("none",), ("RS256", "HS512"), ()):
        with pytest.raises(ValueError):
            TrustedIssuer(
                issuer="https://idp.example", keys=StaticJwks({"keys": []}), audience="x", algorithms=algorithms
            )


def test_symmetric_and_private_keys_in_a_jwks_are_ignored_or_reduced_to_public() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk_private = dict(RSAAlgorithm.to_jwk(private, as_dict=True))
    jwk_private.update(kid="rsa")
    keys = StaticJwks({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}, jwk_private]})
    assert keys.lookup("hmac", T0) is None
    found = keys.lookup("rsa", T0)
    assert found is not None and isinstance(found[1], rsa.RSAPublicKey)



def test_a_token_verified_before_still_expires_on_time(auth: AuthService, clock: Clock) -> None:
    """Verified tokens are remembered, but their time claims are checked on every use."""
    token = auth.login("alice", PASSWORD).access_token
    assert auth.verify_token(token).account_id == 1
    assert auth.verify_token(token).account_id == 1
    clock.t += 3600
    with pytest.raises(TokenExpired):
        auth.verify_token(token)


def test_remembering_a_valid_token_does_not_admit_a_tampered_copy(auth: AuthService) -> None:
    token = auth.login("alice", PASSWORD).access_token
    auth.verify_token(token)
    head, payload, signature = token.split(".")
    forged = ".".join((head, payload, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")))
    with pytest.raises(TokenInvalid):
        auth.verify_token(forged)
