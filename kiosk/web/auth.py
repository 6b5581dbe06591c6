"""Who may use the technician console (display.md, The console): accounts, sessions, CSRF
tokens and the failed-login limit.

- Accounts live in a small text file the configuration names, one a line,
  ``NAME:ROLE:$scrypt$n=N,r=R,p=P$SALT$HASH`` (salt and hash in base64), written by
  ``kiosk passwd`` (kiosk/web/passwd.py). There is no default account and no default
  password: without the file nobody logs in. The file is read again whenever it changes, so
  a new account, a new password or a removed account counts at once.
- Passwords are kept as salted scrypt hashes (standard library). Checking one costs tens of
  milliseconds and 32 MiB on purpose; one check runs at a time, so a burst of logins cannot
  take a Pi's memory. An unknown name costs the same check as a wrong password.
- Sessions are random tokens in a server-side table with an absolute expiry; each carries
  its own CSRF token, compared in constant time.
- Failed logins are counted per client address and per account name; after
  ``FAILURES_ALLOWED`` the key is locked for a time that doubles with every further failure.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import KioskError

ROLES = ("viewer", "operator")
#: Account names: what a Unix user name may be, short enough to read in a journal line.
NAME_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
#: scrypt's cost: 2**15 * 8 * 128 bytes = 32 MiB of memory and ~0.1 s on a PC (more on a Pi).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
_MAXMEM = 64 * 1024 * 1024
#: The largest cost a file may ask for (a hand-edited line must not exhaust the Pi).
_MAX_N = 2**20

FAILURES_ALLOWED = 5
LOCK_BASE_S = 30.0
LOCK_MAX_S = 3600.0
#: A key's failures are forgotten after this long without another failure.
FORGET_S = 3600.0
MAX_LIMITER_KEYS = 4096
MAX_SESSIONS = 64


class AccountsError(KioskError):
    """The accounts file cannot be read or written; the message names the file and line."""


@dataclass(frozen=True)
class Account:
    """One console user: a name, a role and the password's hash (never the password)."""

    name: str
    role: str
    hashed: str

    @property
    def may_act(self) -> bool:
        """Operators may act (test the relay, lockdown, resume, reset the count)."""
        return self.role == "operator"


def check_name(name: str) -> str | None:
    """Why ``name`` cannot be an account name, or None."""
    if not NAME_RE.fullmatch(name):
        return (
            "an account name is 1-32 characters: lower-case letters, digits, '_', '.' and '-', "
            "starting with a letter or '_'"
        )
    return None


def check_password(password: str) -> str | None:
    """Why ``password`` is refused, or None."""
    if not password.strip():
        return "the password is empty"
    if len(password) < MIN_PASSWORD:
        return f"the password is shorter than {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"the password is longer than {MAX_PASSWORD} characters"
    return None


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A salted scrypt hash in the accounts file's form ``$scrypt$n=..,r=..,p=..$salt$hash``."""
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(password.encode(), salt, n, r, p)
    return f"$scrypt$n={n},r={r},p={p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches ``hashed`` (constant-time comparison)."""
    parsed = _parse_hash(hashed)
    if parsed is None:
        return False
    n, r, p, salt, digest = parsed
    return hmac.compare_digest(_scrypt(password.encode(), salt, n, r, p), digest)


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=HASH_BYTES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


_HASH_RE = re.compile(r"\$scrypt\$n=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)")


def _parse_hash(hashed: str) -> tuple[int, int, int, bytes, bytes] | None:
    m = _HASH_RE.fullmatch(hashed)
    if m is None:
        return None
    n, r, p = int(m[1]), int(m[2]), int(m[3])
    # n a power of two, and the whole cost within what a kiosk can pay.
    if n < 2 or n & (n - 1) or n > _MAX_N or not 1 <= r <= 32 or not 1 <= p <= 16:
        return None
    if 128 * n * r * p > _MAXMEM:
        return None
    try:
        return n, r, p, _unb64(m[4]), _unb64(m[5])
    except ValueError:
        return None


# -- the accounts file ------------------------------------------------------------------------


def parse_accounts(text: str, *, where: str) -> dict[str, Account]:
    """The accounts of a file's text; raise AccountsError naming ``where`` and the line."""
    accounts: dict[str, Account] = {}
    problems = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3:
            problems.append(f"{where}:{number}: expected NAME:ROLE:HASH")
            continue
        name, role, hashed = parts
        if check_name(name):
            problems.append(f"{where}:{number}: {check_name(name)}")
        elif role not in ROLES:
            problems.append(f"{where}:{number}: role {role!r} is not one of {', '.join(ROLES)}")
        elif _parse_hash(hashed) is None:
            problems.append(f"{where}:{number}: the password hash is not a kiosk scrypt hash")
        elif name in accounts:
            problems.append(f"{where}:{number}: account {name} appears twice")
        else:
            accounts[name] = Account(name, role, hashed)
    if problems:
        raise AccountsError("; ".join(problems))
    return accounts


def format_accounts(accounts: Mapping[str, Account]) -> str:
    """The file's text for ``accounts`` (sorted by name)."""
    head = "# Ashyq kiosk console accounts: NAME:ROLE:HASH. Written by `kiosk passwd`.\n"
    return head + "".join(f"{a.name}:{a.role}:{a.hashed}\n" for _, a in sorted(accounts.items()))


class Accounts:
    """The accounts file, read again whenever it changes (size, mtime or inode)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._accounts: dict[str, Account] = {}
        self._problem: str | None = None

    def get(self, name: str) -> Account | None:
        """The account called ``name`` as the file says now, or None."""
        return self.all().get(name)

    def all(self) -> dict[str, Account]:
        """Every account (empty when the file is missing or broken: see ``problem``)."""
        with self._lock:
            try:
                st = self.path.stat()
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except FileNotFoundError:
                self._stamp, self._accounts = None, {}
                self._problem = f"{self.path} does not exist: run `kiosk passwd NAME --role ROLE`"
                return {}
            except OSError as exc:
                self._stamp, self._accounts = None, {}
                self._problem = f"{self.path}: {exc.strerror}"
                return {}
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    text = self.path.read_text(encoding="utf-8")
                    self._accounts = parse_accounts(text, where=str(self.path))
                    self._problem = None
                except (OSError, UnicodeDecodeError) as exc:
                    self._accounts, self._problem = {}, f"{self.path}: cannot read: {exc}"
                except AccountsError as exc:
                    self._accounts, self._problem = {}, str(exc)
            return dict(self._accounts)

    @property
    def problem(self) -> str | None:
        """Why nobody can log in (no file, unreadable, malformed), or None."""
        self.all()
        with self._lock:
            return self._problem


_CHECK_LOCK = threading.Lock()


@functools.cache
def _dummy_hash() -> str:
    # Checked against when the name is unknown, so that costs as much as a wrong password.
    return hash_password(secrets.token_urlsafe(16))


def authenticate(accounts: Accounts, name: str, password: str) -> Account | None:
    """The account when ``password`` is its own, else None (same cost either way)."""
    account = accounts.get(name) if len(password) <= MAX_PASSWORD else None
    with _CHECK_LOCK:  # one scrypt at a time: 32 MiB each
        ok = verify_password(password[:MAX_PASSWORD], account.hashed if account else _dummy_hash())
    return account if ok and account is not None else None


# -- sessions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """A logged-in console user. ``token`` is the cookie's value; ``csrf`` goes with POSTs."""

    token: str
    csrf: str
    name: str
    expires: float  # on the monotonic clock


class Sessions:
    """The server-side session table; sessions end at ``session_s`` after login, or logout."""

    def __init__(
        self, *, session_s: float, monotonic: Callable[[], float], max_sessions: int = MAX_SESSIONS
    ) -> None:
        self.session_s = session_s
        self._now = monotonic
        self._max = max_sessions
        self._lock = threading.Lock()
        # Keyed by the token's hash: the dict lookup then leaks nothing of the token itself.
        self._table: OrderedDict[bytes, Session] = OrderedDict()

    def create(self, name: str) -> Session:
        """A new session for ``name``; the oldest goes when the table is full."""
        session = Session(
            secrets.token_urlsafe(32), secrets.token_urlsafe(32), name, self._now() + self.session_s
        )
        with self._lock:
            self._expire()
            while len(self._table) >= self._max:
                self._table.popitem(last=False)
            self._table[_key(session.token)] = session
        return session

    def get(self, token: str | None) -> Session | None:
        """The live session of ``token``, or None (unknown, ended or expired)."""
        if not token or len(token) > 128:
            return None
        with self._lock:
            self._expire()
            return self._table.get(_key(token))

    def end(self, token: str | None) -> None:
        """Log out."""
        if token:
            with self._lock:
                self._table.pop(_key(token), None)

    def end_for(self, name: str) -> None:
        """End every session of ``name`` (its account was removed)."""
        with self._lock:
            for key in [k for k, s in self._table.items() if s.name == name]:
                del self._table[key]

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._table)

    def _expire(self) -> None:
        now = self._now()
        for key in [k for k, s in self._table.items() if s.expires <= now]:
            del self._table[key]


def _key(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def csrf_ok(session: Session, offered: object) -> bool:
    """Whether ``offered`` is this session's CSRF token (constant-time)."""
    return isinstance(offered, str) and hmac.compare_digest(offered.encode(), session.csrf.encode())


# -- the failed-login limit -------------------------------------------------------------------


@dataclass
class _Tally:
    failures: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class LoginLimiter:
    """Failed logins per key (``addr:<client>``, ``account:<name>``): after
    ``FAILURES_ALLOWED`` failures a key is locked, LOCK_BASE_S, then twice as long with each
    further failure, at most LOCK_MAX_S."""

    def __init__(self, *, monotonic: Callable[[], float], max_keys: int = MAX_LIMITER_KEYS):
        self._now = monotonic
        self._max = max_keys
        self._lock = threading.Lock()
        self._tallies: OrderedDict[str, _Tally] = OrderedDict()

    def locked_for(self, *keys: str) -> float:
        """Seconds until every key may try again (0: may try now)."""
        now = self._now()
        with self._lock:
            waits = [t.locked_until - now for k in keys if (t := self._tallies.get(k))]
        return max([0.0, *waits])

    def failed(self, *keys: str) -> int:
        """Count a failure against each key; return the largest failure count."""
        now = self._now()
        worst = 0
        with self._lock:
            for key in keys:
                tally = self._tallies.pop(key, None) or _Tally()
                if now - tally.last > FORGET_S and tally.locked_until <= now:
                    tally = _Tally()
                tally.failures += 1
                tally.last = now
                over = tally.failures - FAILURES_ALLOWED
                if over >= 0:
                    tally.locked_until = now + min(LOCK_MAX_S, LOCK_BASE_S * 2**over)
                self._tallies[key] = tally
                worst = max(worst, tally.failures)
            while len(self._tallies) > self._max:
                self._tallies.popitem(last=False)
        return worst

    def succeeded(self, *keys: str) -> None:
        """A good password: these keys start afresh."""
        with self._lock:
            for key in keys:
                self._tallies.pop(key, None)
