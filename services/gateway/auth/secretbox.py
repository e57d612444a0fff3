"""Encryption at rest for the secrets the venue must be able to read back.

Three kinds of secret cannot be stored as one-way hashes because the gateway
needs their plaintext later: API key secrets (to recompute request HMACs),
TOTP seeds (to compute expected codes) and JWT signing private keys. They
are stored encrypted with AES-256-GCM under a *server key* that lives outside
the database (environment, secrets manager, KMS-decrypted file): a copy of the
database alone reveals none of them.

Each ciphertext is bound to its row by associated data (for example
``b"api_key:rk_..."``), so swapping ciphertexts between rows fails to decrypt.

Server keys rotate: a :class:`SecretBox` holds several keys by id, encrypts
with the current one and decrypts with whichever id the ciphertext names.
The stored form is text, ``v1.<key id>.<base64url(nonce || ciphertext+tag)>``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"
_NONCE_BYTES = 12


class SecretBoxError(Exception):
    """A ciphertext could not be decrypted: wrong server key, tampering or a swapped row."""


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SecretBox:
    """AES-256-GCM with a ring of server keys.

    ``keys`` maps a short key id (letters, digits, ``-``, ``_``) to 32 raw
    bytes; ``current`` names the one new ciphertexts use.
    """

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise ValueError(f"current server key {current!r} is not among the keys")
        self._aeads: dict[str, AESGCM] = {}
        for key_id, key in keys.items():
            if not key_id or "." in key_id:
                raise ValueError(f"server key id {key_id!r} must be non-empty and contain no '.'")
            if len(key) != 32:
                raise ValueError(f"server key {key_id!r} must be 32 bytes, got {len(key)}")
            self._aeads[key_id] = AESGCM(key)
        self.current = current

    @staticmethod
    def generate_key() -> bytes:
        """32 random bytes, for a new server key."""
        return os.urandom(32)

    @classmethod
    def from_base64(cls, encoded: str, key_id: str = "k1") -> SecretBox:
        """One server key given as base64 (standard or url-safe), as it would sit in an env var."""
        text = encoded.strip().replace("-", "+").replace("_", "/").rstrip("=")
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        return cls({key_id: raw}, key_id)

    @classmethod
    def ephemeral(cls) -> SecretBox:
        """A box with a fresh random key: tests and throwaway dev venues only (nothing survives a restart)."""
        return cls({"ephemeral": cls.generate_key()}, "ephemeral")

    def encrypt(self, plaintext: bytes, context: bytes) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aeads[self.current].encrypt(nonce, plaintext, context)
        return f"{_VERSION}.{self.current}.{_b64e(nonce + sealed)}"

    def decrypt(self, stored: str, context: bytes) -> bytes:
        try:
            version, key_id, payload = stored.split(".", 2)
        except ValueError:
            raise SecretBoxError("malformed ciphertext") from None
        if version != _VERSION:
            raise SecretBoxError(f"unknown ciphertext version {version!r}")
        aead = self._aeads.get(key_id)
        if aead is None:
            raise SecretBoxError(f"ciphertext was sealed with server key {key_id!r}, which is not configured")
        try:
            raw = _b64d(payload)
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context)
        except (InvalidTag, ValueError):
            raise SecretBoxError("ciphertext does not decrypt under its server key and context") from None

    def needs_reseal(self, stored: str) -> bool:
        """True when ``stored`` was sealed with a server key other than the current one."""
        parts = stored.split(".", 2)
        return len(parts) != 3 or parts[0] != _VERSION or parts[1] != self.current
