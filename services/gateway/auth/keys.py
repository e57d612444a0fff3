"""The venue's own JWT signing keys: generation, rotation, retirement and the JWKS document.

Policy
------
* One key signs at a time (the newest unretired one). It is replaced when it
  is ``rotate_after`` seconds old (default 24 h): the new key is generated,
  the old one is marked *retired* at that instant, in one store transaction.
* A retired key signs nothing more but stays published in the JWKS and
  accepted for verification for ``verify_for + recheck_interval`` seconds
  after retirement. ``verify_for`` is the access-token lifetime plus clock
  leeway (every token the key signed has expired by then); ``recheck_interval``
  (60 s) covers another gateway process that has not yet noticed the
  rotation (see below). The key is then deleted at the next rotation.
* Algorithm: ``EdDSA`` (Ed25519) by default: small keys, fast deterministic
  signatures, no parameter choices to get wrong. ``RS256`` (RSA-2048) is
  available for consumers that only speak RSA (some API gateways' JWT
  authorizers).
* ``kid`` is ``<YYYYMMDD>-<random>``: unique and readable in logs.
* Private keys are stored as PKCS#8 PEM sealed by the
  :class:`~services.gateway.auth.secretbox.SecretBox` (context
  ``b"signing_key:<kid>"``).

Several gateway processes may share one store: each re-reads the store at
least every ``recheck_interval`` seconds and before rotating, and adopts the
newest unretired key (another process's rotation, or an operator's early
:meth:`KeyRing.rotate`); verification of a ``kid`` it has not seen falls back
to one indexed store lookup.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

from services.gateway.auth.secretbox import SecretBox
from services.gateway.auth.store import AuthStore, SigningKeyRecord

SIGNING_ALGORITHMS = ("EdDSA", "RS256")

PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
PublicKey = ed25519.Ed25519PublicKey | rsa.RSAPublicKey


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private_key: PrivateKey
    created: int
    retired: int | None

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK with ``kid``, ``use`` and ``alg``."""
        public = self.public_key
        if isinstance(public, ed25519.Ed25519PublicKey):
            jwk = dict(OKPAlgorithm.to_jwk(public, as_dict=True))
        else:
            jwk = dict(RSAAlgorithm.to_jwk(public, as_dict=True))
        jwk.update(kid=self.kid, use="sig", alg=self.algorithm)
        return jwk


def generate_private_key(algorithm: str) -> PrivateKey:
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unsupported signing algorithm {algorithm!r}; use one of {SIGNING_ALGORITHMS}")


def _context(kid: str) -> bytes:
    return b"signing_key:" + kid.encode()


class KeyRing:
    """The signing key in force and the keys still valid for verification. Thread-safe."""

    def __init__(
        self,
        store: AuthStore,
        box: SecretBox,
        *,
        algorithm: str = "EdDSA",
        rotate_after: int = 24 * 3600,
        verify_for: int = 3600,
        recheck_interval: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if algorithm not in SIGNING_ALGORITHMS:
            raise ValueError(f"unsupported signing algorithm {algorithm!r}; use one of {SIGNING_ALGORITHMS}")
        if rotate_after <= 0 or verify_for <= 0:
            raise ValueError("rotate_after and verify_for must be positive")
        self.store = store
        self.box = box
        self.algorithm = algorithm
        self.rotate_after = rotate_after
        self.recheck_interval = recheck_interval
        self.verify_for = verify_for + recheck_interval
        """Seconds after retirement during which a key still verifies (and is published)."""
        self.clock = clock
        self._checked_at = float("-inf")
        self._lock = threading.RLock()
        self._current: SigningKey | None = None
        self._cache: dict[str, SigningKey] = {}

    def _now(self, now: float | None) -> int:
        return int(self.clock() if now is None else now)

    def _load(self, record: SigningKeyRecord) -> SigningKey:
        cached = self._cache.get(record.kid)
        if cached is not None and cached.retired == record.retired:
            return cached
        pem = self.box.decrypt(record.private_key, _context(record.kid))
        private = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
            raise ValueError(f"signing key {record.kid} is neither Ed25519 nor RSA")
        key = SigningKey(record.kid, record.algorithm, private, record.created, record.retired)
        self._cache[record.kid] = key
        return key

    def _fresh(self, key: SigningKey | None, now: int) -> bool:
        return key is not None and key.retired is None and now < key.created + self.rotate_after

    def signing_key(self, now: float | None = None) -> SigningKey:
        """The key to sign with now, rotating first if the current one is due."""
        t = self._now(now)
        with self._lock:
            if self._fresh(self._current, t) and t - self._checked_at < self.recheck_interval:
                assert self._current is not None
                return self._current
            # Another process sharing the store may have rotated: adopt the newest unretired key.
            self._checked_at = t
            newest = self._newest_unretired()
            if newest is not None and newest.algorithm == self.algorithm and self._fresh(newest, t):
                self._current = newest
                return newest
            return self.rotate(t)

    def _newest_unretired(self) -> SigningKey | None:
        """Re-read every key from the store (retirements and deletions by other processes included)."""
        records = self.store.list_signing_keys()
        self._cache = {r.kid: self._load(r) for r in records}
        unretired = [r for r in records if r.retired is None]
        return self._cache[unretired[-1].kid] if unretired else None

    def rotate(self, now: float | None = None) -> SigningKey:
        """Start signing with a new key now; retire the others; forget keys past their verification window."""
        t = self._now(now)
        with self._lock:
            private = generate_private_key(self.algorithm)
            kid = f"{time.strftime('%Y%m%d', time.gmtime(t))}-{secrets.token_urlsafe(9)}"
            pem = private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            record = SigningKeyRecord(kid, self.algorithm, self.box.encrypt(pem, _context(kid)), t, None)
            self.store.rotate_signing_key(record, retired=t)
            self.store.delete_signing_keys_retired_before(t - self.verify_for)
            self._cache = {
                k: SigningKey(v.kid, v.algorithm, v.private_key, v.created, v.retired if v.retired is not None else t)
                for k, v in self._cache.items()
                if v.retired is None or v.retired >= t - self.verify_for
            }
            key = SigningKey(kid, self.algorithm, private, t, None)
            self._cache[kid] = key
            self._current = key
            return key

    def verification_key(self, kid: str, now: float | None = None) -> SigningKey | None:
        """The key named ``kid`` if it may still verify tokens at ``now``, else None."""
        t = self._now(now)
        with self._lock:
            key = self._cache.get(kid)
            if key is None:
                record = self.store.get_signing_key(kid)
                if record is None:
                    return None
                key = self._load(record)
        if key.retired is not None and t >= key.retired + self.verify_for:
            return None
        return key

    def jwks(self, now: float | None = None) -> dict[str, Any]:
        """The JWKS document for ``/.well-known/jwks.json``: the signing key and those still verifying."""
        t = self._now(now)
        self.signing_key(t)
        with self._lock:
            keys = [
                self._load(r)
                for r in self.store.list_signing_keys()
                if r.retired is None or t < r.retired + self.verify_for
            ]
        return {"keys": [k.public_jwk() for k in reversed(keys)]}
