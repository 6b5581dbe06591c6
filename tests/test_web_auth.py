"""The console's accounts, password hashes, sessions and failed-login limit (kiosk/web/auth.py)."""

from __future__ import annotations

import pytest

from kiosk.clock import FakeClock
from kiosk.web.auth import (
    FAILURES_ALLOWED,
    LOCK_BASE_S,
    LOCK_MAX_S,
    Account,
    Accounts,
    AccountsError,
    LoginLimiter,
    Sessions,
    authenticate,
    check_name,
    check_password,
    csrf_ok,
    format_accounts,
    hash_password,
    parse_accounts,
    verify_password,
)

FAST = {"n": 2**10}  # a cheap hash for tests that are not about the cost


def test_a_hash_is_salted_scrypt_and_checks_only_its_password() -> None:
    one, two = hash_password("correct horse"), hash_password("correct horse")
    assert one.startswith("$scrypt$n=32768,r=8,p=1$")
    assert one != two  # salted
    assert "correct horse" not in one
    assert verify_password("correct horse", one)
    assert not verify_password("correct horsE", one)
    assert not verify_password("", one)


@pytest.mark.parametrize(
    "hashed",
    [
        "",
        "plain",
        "$scrypt$n=1000,r=8,p=1$AAAA$AAAA",  # n not a power of two
        "$scrypt$n=2097152,r=8,p=1$AAAA$AAAA",  # a cost no kiosk can pay
        "$scrypt$n=1024,r=8,p=1$not base64!$AAAA",
        "$2b$12$abcdefghijklmnopqrstuv",  # bcrypt: not ours
    ],
)
def test_a_malformed_or_too_costly_hash_never_matches(hashed: str) -> None:
    assert not verify_password("anything at all", hashed)


def test_name_and_password_rules() -> None:
    assert check_name("alice") is None and check_name("night_shift.2") is None
    for bad in ("", "Alice", "1abc", "a:b", "a b", "x" * 33, "ä"):
        assert check_name(bad), bad
    assert check_password("") and check_password("          ")
    assert check_password("short")
    assert check_password("x" * 1025)
    assert check_password("ten chars!") is None


def test_the_file_format_round_trips_and_bad_lines_name_file_and_line() -> None:
    accounts = {
        "bob": Account("bob", "viewer", hash_password("bob password", **FAST)),
        "alice": Account("alice", "operator", hash_password("alice password", **FAST)),
    }
    text = format_accounts(accounts)
    assert text.splitlines()[1].startswith("alice:operator:$scrypt$")  # sorted, one a line
    assert parse_accounts(text, where="f") == accounts
    bad = "alice:admin:" + accounts["alice"].hashed + "\nbob:viewer\nCarl:viewer:x\n"
    with pytest.raises(AccountsError) as err:
        parse_accounts(bad, where="/etc/acc")
    message = str(err.value)
    assert "/etc/acc:1: role 'admin'" in message
    assert "/etc/acc:2: expected NAME:ROLE:HASH" in message
    assert "/etc/acc:3: an account name" in message


def test_the_accounts_file_is_read_again_when_it_changes(tmp_path) -> None:
    path = tmp_path / "acc"
    accounts = Accounts(path)
    assert accounts.all() == {} and "kiosk passwd" in (accounts.problem or "")
    alice = Account("alice", "operator", hash_password("alice password", **FAST))
    path.write_text(format_accounts({"alice": alice}))
    assert accounts.get("alice") == alice and accounts.problem is None
    path.write_text(format_accounts({}) + "# nobody now\n")
    assert accounts.get("alice") is None
    path.write_text("garbage\n")
    assert accounts.all() == {} and "acc:1" in (accounts.problem or "")


def test_authenticate_knows_the_account_and_its_password_only(tmp_path) -> None:
    path = tmp_path / "acc"
    hashed = hash_password("alice password", **FAST)
    path.write_text(format_accounts({"alice": Account("alice", "operator", hashed)}))
    accounts = Accounts(path)
    assert authenticate(accounts, "alice", "alice password") == accounts.get("alice")
    assert authenticate(accounts, "alice", "alice passwordX") is None
    assert authenticate(accounts, "mallory", "alice password") is None
    assert authenticate(accounts, "alice", "x" * 5000) is None


def test_sessions_expire_on_the_clock_and_end_at_logout() -> None:
    clock = FakeClock()
    sessions = Sessions(session_s=600, monotonic=clock.monotonic)
    s = sessions.create("alice")
    assert len(s.token) >= 40 and len(s.csrf) >= 40 and s.token != s.csrf
    assert sessions.get(s.token) == s
    assert sessions.get(s.token + "x") is None and sessions.get(None) is None
    clock.advance(599)
    assert sessions.get(s.token) == s
    clock.advance(1)
    assert sessions.get(s.token) is None and len(sessions) == 0
    t = sessions.create("alice")
    sessions.end(t.token)
    assert sessions.get(t.token) is None


def test_the_session_table_is_bounded_and_ends_a_removed_account() -> None:
    clock = FakeClock()
    sessions = Sessions(session_s=600, monotonic=clock.monotonic, max_sessions=3)
    made = [sessions.create(f"u{i}") for i in range(5)]
    assert [sessions.get(s.token) is not None for s in made] == [False, False, True, True, True]
    sessions.end_for("u3")
    assert sessions.get(made[3].token) is None and sessions.get(made[4].token) is not None


def test_csrf_tokens_compare_exactly() -> None:
    s = Sessions(session_s=60, monotonic=FakeClock().monotonic).create("a")
    assert csrf_ok(s, s.csrf)
    assert not csrf_ok(s, s.csrf[:-1]) and not csrf_ok(s, None) and not csrf_ok(s, 123)


def test_failed_logins_lock_a_key_for_a_growing_time() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(monotonic=clock.monotonic)
    for _ in range(FAILURES_ALLOWED - 1):
        limiter.failed("addr:1.2.3.4", "account:alice")
    assert limiter.locked_for("addr:1.2.3.4") == 0
    limiter.failed("addr:1.2.3.4", "account:alice")
    assert limiter.locked_for("addr:1.2.3.4") == LOCK_BASE_S
    assert limiter.locked_for("account:alice") == LOCK_BASE_S
    assert limiter.locked_for("addr:5.6.7.8") == 0
    clock.advance(LOCK_BASE_S)
    assert limiter.locked_for("addr:1.2.3.4") == 0
    limiter.failed("addr:1.2.3.4")
    assert limiter.locked_for("addr:1.2.3.4") == 2 * LOCK_BASE_S  # twice as long
    for _ in range(20):
        limiter.failed("addr:1.2.3.4")
    assert limiter.locked_for("addr:1.2.3.4") == LOCK_MAX_S
    limiter.succeeded("addr:1.2.3.4")
    assert limiter.locked_for("addr:1.2.3.4") == 0


def test_the_limiter_forgets_old_failures_and_stays_bounded() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(monotonic=clock.monotonic, max_keys=10)
    for _ in range(FAILURES_ALLOWED - 1):
        limiter.failed("account:alice")
    clock.advance(2 * 3600)
    assert limiter.failed("account:alice") == 1  # a new start after a quiet while
    for i in range(100):
        limiter.failed(f"account:n{i}")
    assert len(limiter._tallies) <= 10
