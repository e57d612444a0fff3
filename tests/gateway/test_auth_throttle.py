"""Login throttling: exponential backoff per username and per IP, with a Retry-After."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.gateway.auth import (
    Argon2Params,
    AuthService,
    AuthSettings,
    BackoffPolicy,
    InMemoryLoginThrottle,
    SecretBox,
)
from services.gateway.auth.errors import InvalidCredentials, Throttled
from services.gateway.auth.throttle import ip_key

T0 = 1_700_000_000.0
PASSWORD = "correct-horse-battery"
IP = "198.51.100.7"


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


def fail(auth: AuthService, times: int, username: str = "alice", ip: str = IP) -> None:
    for _ in range(times):
        with pytest.raises(InvalidCredentials):
            auth.login(username, "wrong-password-guess", ip=ip)


def test_login_is_throttled_after_five_failures_with_a_retry_after(auth: AuthService, clock: Clock) -> None:
    fail(auth, 5)
    with pytest.raises(Throttled) as err:
        auth.login("alice", PASSWORD, ip=IP)  # even the right password waits
    assert err.value.code == "throttled" and err.value.status == 429
    assert err.value.retry_after == 1
    assert err.value.headers() == {"Retry-After": "1"}
    assert err.value.body()["error"]["code"] == "throttled"


def test_the_wait_doubles_with_each_further_failure(auth: AuthService, clock: Clock) -> None:
    fail(auth, 5)
    waits = []
    for _ in range(5):
        with pytest.raises(Throttled) as err:
            auth.login("alice", "wrong-password-guess", ip=IP)
        waits.append(err.value.retry_after)
        clock.t += err.value.retry_after
        fail(auth, 1)
    assert waits == [1, 2, 4, 8, 16]


def test_waiting_out_the_retry_after_lets_the_right_password_in(auth: AuthService, clock: Clock) -> None:
    fail(auth, 5)
    clock.t += 1
    assert auth.login("alice", PASSWORD, ip=IP).access_token


def test_a_throttled_attempt_spends_no_argon2_and_does_not_lengthen_the_wait(auth: AuthService, clock: Clock) -> None:
    fail(auth, 5)
    clock.t += 1
    fail(auth, 1)
    calls = 0
    real = auth.hasher.verify

    def spy(password_hash: str, password: str) -> bool:
        nonlocal calls
        calls += 1
        return real(password_hash, password)

    auth.hasher.verify = spy  # type: ignore[method-assign]
    for _ in range(50):
        with pytest.raises(Throttled) as err:
            auth.login("alice", PASSWORD, ip=IP)
    assert calls == 0 and err.value.retry_after == 2


def test_a_successful_login_resets_the_username_count(auth: AuthService, clock: Clock) -> None:
    fail(auth, 4)
    auth.login("alice", PASSWORD, ip=IP)
    fail(auth, 5)  # five fresh free attempts
    with pytest.raises(Throttled):
        auth.login("alice", PASSWORD, ip=IP)


def test_the_username_is_throttled_whatever_the_ip(auth: AuthService) -> None:
    for i in range(5):
        fail(auth, 1, ip=f"203.0.113.{i}")
    with pytest.raises(Throttled):
        auth.login("alice", PASSWORD, ip="203.0.113.99")


def test_one_ip_guessing_many_usernames_is_throttled(auth: AuthService) -> None:
    for i in range(20):
        fail(auth, 1, username=f"victim{i}")
    with pytest.raises(Throttled):
        auth.login("alice", PASSWORD, ip=IP)
    assert auth.login("alice", PASSWORD, ip="192.0.2.1")  # other clients are unaffected


def test_unknown_usernames_are_throttled_like_real_ones(auth: AuthService) -> None:
    fail(auth, 5, username="ghost")
    with pytest.raises(Throttled):
        auth.login("ghost", PASSWORD, ip=IP)


def test_usernames_are_throttled_case_insensitively(auth: AuthService) -> None:
    for spelling in ("alice", "ALICE", "Alice", "aLice", "alicE"):
        fail(auth, 1, username=spelling, ip="")
    with pytest.raises(Throttled):
        auth.login("alice", PASSWORD)


def test_successful_logins_from_one_nat_address_never_throttle_it(auth: AuthService, clock: Clock) -> None:
    for _ in range(50):
        auth.login("alice", PASSWORD, ip=IP)
        clock.t += 1


def test_counts_are_forgotten_after_an_hour_of_quiet() -> None:
    throttle = InMemoryLoginThrottle()
    assert [throttle.acquire("alice", None, T0) for _ in range(5)] == [0] * 5
    assert throttle.acquire("alice", None, T0 + 0.5) == 0.5
    later = T0 + 3600
    assert [throttle.acquire("alice", None, later) for _ in range(5)] == [0] * 5  # five fresh free attempts


def test_the_wait_is_capped_at_max_delay() -> None:
    policy = BackoffPolicy(free_attempts=1, base_delay=1, max_delay=60, forget_after=10_000)
    throttle = InMemoryLoginThrottle(policy, policy)
    t, waits = T0, []
    for _ in range(9):
        assert throttle.acquire("alice", IP, t) == 0
        wait = throttle.acquire("alice", IP, t)
        waits.append(wait)
        t += wait
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_concurrent_attempts_are_counted_when_they_start() -> None:
    throttle = InMemoryLoginThrottle()
    allowed = [throttle.acquire("alice", IP, T0) == 0 for _ in range(100)]  # a burst before any failure lands
    assert allowed.count(True) == 5


def test_ipv6_clients_are_keyed_by_their_64_and_mapped_ipv4_by_the_address() -> None:
    assert ip_key("2001:db8:1:2:aaaa::1") == ip_key("2001:db8:1:2:bbbb::2") == "ip:2001:db8:1:2::/64"
    assert ip_key("2001:db8:1:3::1") != ip_key("2001:db8:1:2::1")
    assert ip_key("::ffff:198.51.100.7") == ip_key(IP) == "ip:198.51.100.7"


def test_throttle_memory_is_bounded() -> None:
    throttle = InMemoryLoginThrottle(max_entries=1000)
    for i in range(5000):
        throttle.acquire(f"spray{i}", None, T0)
    assert len(throttle) <= 1000
