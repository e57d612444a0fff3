"""TOTP second factor (RFC 6238): 6 digits, 30-second steps, SHA-1, as every authenticator app does.

Flow: :meth:`Totp.setup` makes a fresh 160-bit secret, stores it sealed and
*pending*, and returns it with its ``otpauth://`` URI (issuer "Rialto") for
the QR code; :meth:`Totp.enable` turns MFA on once the user proves their app
has the secret by sending a valid code; from then on login needs a code
(:meth:`Totp.check`). Setup is refused once MFA is enabled, so a stolen access
token cannot replace the second factor.

A code is accepted for its own step and one step either side (clock drift).
Each accepted code's step is recorded, and a code whose step is not later
than the last accepted one is refused as a replay: a code works once, and an
older code stops working once a newer one has been used. The record is a
compare-and-set in the store, so two gateway processes cannot both accept
the same code.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyotp

from services.gateway.auth.errors import (
    AccountNotFound,
    InvalidMfaCode,
    MfaAlreadyEnabled,
    MfaCodeReused,
    MfaNotSetUp,
)
from services.gateway.auth.secretbox import SecretBox
from services.gateway.auth.store import AuthStore, UserRecord

ISSUER_NAME = "Rialto"
INTERVAL = 30
DIGITS = 6


@dataclass(frozen=True)
class MfaSetup:
    secret: str
    otpauth_uri: str

    def as_dict(self) -> dict[str, str]:
        return {"secret": self.secret, "otpauth_uri": self.otpauth_uri}


def _context(user_id: int) -> bytes:
    return b"mfa_secret:" + str(user_id).encode()


def _clean(code: str) -> str | None:
    if not isinstance(code, str):
        return None
    digits = code.replace(" ", "").replace("-", "")
    if len(digits) != DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


class Totp:
    """TOTP setup, enabling and checking against the store. Thread-safe; synchronous and fast."""

    def __init__(
        self,
        store: AuthStore,
        box: SecretBox,
        *,
        valid_window: int = 1,
        issuer_name: str = ISSUER_NAME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.box = box
        self.valid_window = valid_window
        self.issuer_name = issuer_name
        self.clock = clock

    def setup(self, user_id: int) -> MfaSetup:
        user = self.store.get_user(user_id)
        if user is None:
            raise AccountNotFound()
        if user.mfa_enabled:
            raise MfaAlreadyEnabled()
        secret = pyotp.random_base32()  # 32 base32 characters = 160 bits, RFC 4226's recommendation
        if not self.store.set_pending_mfa(user_id, self.box.encrypt(secret.encode(), _context(user_id))):
            raise MfaAlreadyEnabled()
        uri = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(
            name=user.username, issuer_name=self.issuer_name
        )
        return MfaSetup(secret=secret, otpauth_uri=uri)

    def enable(self, user_id: int, code: str, now: float | None = None) -> None:
        user = self.store.get_user(user_id)
        if user is None:
            raise AccountNotFound()
        if user.mfa_enabled:
            raise MfaAlreadyEnabled()
        if user.mfa_secret is None:
            raise MfaNotSetUp()
        step = self._matching_step(user, code, now)
        if step is None:
            raise InvalidMfaCode()
        if not self.store.enable_mfa(user_id, user.mfa_secret, step):
            # Enabled meanwhile, or set up again with a new secret: the code was for a secret no longer pending.
            raise InvalidMfaCode("MFA setup changed meanwhile; scan the new code and try again")

    def check(self, user: UserRecord, code: str | None, now: float | None = None) -> None:
        """Accept a login's code for a user with MFA enabled, once; raise :class:`InvalidMfaCode` or
        :class:`MfaCodeReused` otherwise."""
        if code is None:
            raise InvalidMfaCode()
        step = self._matching_step(user, code, now)
        if step is None:
            raise InvalidMfaCode()
        if not self.store.advance_mfa_step(user.id, step):
            raise MfaCodeReused()

    def _matching_step(self, user: UserRecord, code: str, now: float | None) -> int | None:
        """The time step whose code equals ``code`` within the window, or None. Every candidate is
        compared, in constant time, whatever matches."""
        digits = _clean(code)
        if digits is None or user.mfa_secret is None:
            return None
        secret = self.box.decrypt(user.mfa_secret, _context(user.id)).decode()
        totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
        current = int((self.clock() if now is None else now) // INTERVAL)
        found: int | None = None
        for step in range(current - self.valid_window, current + self.valid_window + 1):
            if hmac.compare_digest(totp.generate_otp(step), digits) and found is None:
                found = step
        return found

    @staticmethod
    def code_at(secret: str, now: float) -> str:
        """The code an authenticator app shows at ``now`` (tests, and a CLI helper)."""
        return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).at(int(now))
