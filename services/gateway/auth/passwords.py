"""Username and password rules, and Argon2id password hashing.

Usernames
---------
3 to 32 characters of ASCII letters, digits, ``.``, ``_`` and ``-``, starting
and ending with a letter or digit. They are unique case-insensitively: the
store keys them by :func:`normalize_username` (lower case) and keeps the
spelling the user chose for display. ASCII only, so that no two distinct
usernames look alike (no Unicode confusables, no case-folding surprises).

Passwords
---------
Following NIST SP 800-63B: length matters, composition rules do not. A
password is normalized to Unicode NFKC (so the same passphrase typed on two
keyboards hashes the same), then must be 12 to 256 characters, contain no
control characters, have at least 5 distinct characters, not contain the
username, and not be on a short list of common passwords (a larger breached
list can be passed in :class:`PasswordPolicy`). Spaces and any printable
Unicode are allowed.

Hashing
-------
Argon2id (RFC 9106) through argon2-cffi, with parameters from
:class:`Argon2Params`. The default is OWASP's minimum for Argon2id (19 MiB,
2 passes, 1 lane), chosen for the venue's 2-core machines; production should
raise it as far as login latency allows. Hashes are PHC strings that carry
their own parameters, so changing :class:`Argon2Params` later is safe: each
user's hash is upgraded at their next successful login
(:meth:`PasswordHasher.needs_rehash`).

Argon2 is deliberately slow (tens of milliseconds and ``memory_cost`` KiB of
RAM per call), so :class:`PasswordHasher` bounds how many hashes run at once
(``max_concurrency``) and callers in an event loop run it in a worker thread.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass, field

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.gateway.auth.errors import InvalidUsername, WeakPassword

USERNAME_MIN = 3
USERNAME_MAX = 32
_USERNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")

RESERVED_USERNAMES = frozenset({"admin", "administrator", "root", "system", "rialto", "support", "operator"})

COMMON_PASSWORDS = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456789012345",
        "1234567890qwerty",
        "qwertyuiop123",
        "qwerty123456",
        "qwerty1234567",
        "1q2w3e4r5t6y",
        "1q2w3e4r5t6y7u",
        "password1234",
        "password12345",
        "password123456",
        "passwordpassword",
        "iloveyou1234",
        "letmein12345",
        "welcome12345",
        "administrator",
        "correcthorsebatterystaple",
        "correct horse battery staple",
        "trustno1trustno1",
        "qazwsxedcrfv",
        "1qaz2wsx3edc",
        "zaq12wsxcde3",
        "abcdefghijkl",
        "abcd1234abcd",
        "rialtorialto",
        "rialto123456",
    }
)


def normalize_username(username: str) -> str:
    """The key a username is unique by: stripped of surrounding spaces, lower case."""
    return username.strip().lower()


def validate_username(username: str) -> str:
    """Return the username as it will be displayed (stripped), or raise :class:`InvalidUsername`."""
    name = username.strip()
    if not USERNAME_MIN <= len(name) <= USERNAME_MAX:
        raise InvalidUsername(f"username must be {USERNAME_MIN} to {USERNAME_MAX} characters long")
    if not _USERNAME_RE.fullmatch(name):
        raise InvalidUsername(
            "username may contain only ASCII letters, digits, '.', '_' and '-', "
            "and must start and end with a letter or digit"
        )
    if name.lower() in RESERVED_USERNAMES:
        raise InvalidUsername("this username is reserved")
    return name


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 12
    max_length: int = 256
    min_distinct: int = 5
    blocklist: frozenset[str] = field(default=COMMON_PASSWORDS)


def normalize_password(password: str) -> str:
    """NFKC normalization, applied before both validation and hashing."""
    return unicodedata.normalize("NFKC", password)


def validate_password(password: str, username: str = "", policy: PasswordPolicy | None = None) -> None:
    """Raise :class:`WeakPassword` with the first rule ``password`` breaks."""
    policy = policy or PasswordPolicy()
    pw = normalize_password(password)
    if len(pw) < policy.min_length:
        raise WeakPassword(f"password must be at least {policy.min_length} characters long")
    if len(pw) > policy.max_length:
        raise WeakPassword(f"password must be at most {policy.max_length} characters long")
    if any(unicodedata.category(ch) == "Cc" for ch in pw):
        raise WeakPassword("password must not contain control characters (tabs, newlines, ...)")
    if len(set(pw)) < policy.min_distinct:
        raise WeakPassword(f"password must contain at least {policy.min_distinct} different characters")
    lowered = pw.lower()
    name = normalize_username(username)
    if name and name in lowered:
        raise WeakPassword("password must not contain the username")
    if lowered in policy.blocklist or lowered.strip() in policy.blocklist:
        raise WeakPassword("this password is too common")


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost. ``memory_cost`` is in KiB. Tests use ``Argon2Params.cheap()``."""

    time_cost: int = 2
    memory_cost: int = 19 * 1024
    parallelism: int = 1
    hash_len: int = 32
    salt_len: int = 16
    max_concurrency: int = 2

    @classmethod
    def cheap(cls) -> Argon2Params:
        """The cheapest parameters Argon2 accepts: for tests only."""
        return cls(time_cost=1, memory_cost=8, parallelism=1, max_concurrency=4)


class PasswordHasher:
    """Argon2id hashing with a bounded number of concurrent hashes. Thread-safe."""

    def __init__(self, params: Argon2Params | None = None) -> None:
        self.params = params or Argon2Params()
        self._hasher = argon2.PasswordHasher(
            time_cost=self.params.time_cost,
            memory_cost=self.params.memory_cost,
            parallelism=self.params.parallelism,
            hash_len=self.params.hash_len,
            salt_len=self.params.salt_len,
            type=argon2.Type.ID,
        )
        self._slots = threading.BoundedSemaphore(max(1, self.params.max_concurrency))
        # A real hash of an unguessable password, verified when the username is unknown so that
        # "no such user" costs the same time as "wrong password".
        self._dummy_hash = self._hasher.hash(f"no-such-user-{id(self)}-{threading.get_ident()}")

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(normalize_password(password))

    def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches; False on mismatch or an unreadable hash (never raises for those)."""
        with self._slots:
            try:
                return self._hasher.verify(password_hash, normalize_password(password))
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    def verify_dummy(self, password: str) -> None:
        """Spend the same time as :meth:`verify` against a hash that never matches."""
        self.verify(self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the stored hash was made with other parameters (or another algorithm)."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True
