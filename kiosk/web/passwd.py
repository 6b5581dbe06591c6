"""`kiosk passwd NAME --role viewer|operator`: add a console account or change its password.

The password is asked twice on the terminal (never echoed), or read from standard input with
``--password-stdin`` (one line, for scripts). It is checked (not empty, at least
kiosk.web.auth.MIN_PASSWORD characters) and stored only as a salted scrypt hash. The accounts
file is replaced atomically (a temporary file in the same folder, then ``os.replace``), keeps
every other account, and is never readable by others: mode 0640, its group kept (a new file
takes the configuration file's group, which is the daemon's: scripts/install.sh).
``--remove`` deletes an account.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from kiosk.errors import KioskError
from kiosk.web.auth import (
    ROLES,
    Account,
    AccountsError,
    check_name,
    check_password,
    format_accounts,
    hash_password,
    parse_accounts,
)

ACCOUNTS_FILE = "console.accounts"
FILE_MODE = 0o640
EX_USAGE = 2


def add_arguments(p: argparse.ArgumentParser, *, default_config: str) -> None:
    """The command's arguments; the command runs :func:`cmd_passwd`."""
    p.add_argument("name", metavar="NAME", help="the account's name (lower case, as for Unix)")
    p.add_argument("--role", choices=ROLES, help="viewer sees everything; operator may also act")
    p.add_argument("--config", default=default_config, help="configuration file")
    p.add_argument("--file", default=None, help="accounts file (default: the configuration's)")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    p.add_argument("--remove", action="store_true", help="delete the account")
    p.set_defaults(func=cmd_passwd)


def accounts_file_of(cfg: Any) -> Path:
    """The accounts file a configuration names: ``[web] accounts_file`` (the loader fills in
    ``state_dir/console.accounts`` when it is not given)."""
    web = getattr(cfg, "web", None)
    named = getattr(web, "accounts_file", None) if web is not None else None
    if named:
        return Path(named)
    return Path(cfg.state_dir) / ACCOUNTS_FILE


def cmd_passwd(args: argparse.Namespace) -> int:
    """Run `kiosk passwd`; exit 0 when the file was written, 2 otherwise."""
    problem = check_name(args.name)
    if problem:
        return _fail(f"{args.name!r}: {problem}")
    if args.file:
        path = Path(args.file)
    else:
        from kiosk.config import load_config

        path = accounts_file_of(load_config(args.config))
    group_from = None if args.file else Path(args.config)
    if args.remove:
        return _remove(path, args.name)
    if args.role is None:
        return _fail("--role viewer or --role operator is required")
    password = _read_password(args.password_stdin)
    if password is None:
        return EX_USAGE
    try:
        accounts = read_accounts(path)
        was = accounts.get(args.name)
        accounts[args.name] = Account(args.name, args.role, hash_password(password))
        write_accounts(path, accounts, group_from=group_from)
    except KioskError as exc:
        return _fail(str(exc))
    what = "password changed" if was else "account added"
    print(f"{path}: {args.name} ({args.role}): {what}", file=sys.stderr)
    return 0


def _remove(path: Path, name: str) -> int:
    try:
        accounts = read_accounts(path)
        if accounts.pop(name, None) is None:
            return _fail(f"{path}: no account {name}")
        write_accounts(path, accounts)
    except KioskError as exc:
        return _fail(str(exc))
    print(f"{path}: {name}: account removed", file=sys.stderr)
    return 0


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password.removesuffix("\r")
    else:
        if not sys.stdin.isatty():
            _fail("standard input is not a terminal: give --password-stdin to read it from there")
            return None
        password = getpass.getpass("New password: ")
        problem = check_password(password)
        if problem:
            _fail(problem)
            return None
        if getpass.getpass("Again: ") != password:
            _fail("the two passwords differ")
            return None
    problem = check_password(password)
    if problem:
        _fail(problem)
        return None
    return password


def read_accounts(path: Path) -> dict[str, Account]:
    """The file's accounts (none when it does not exist yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise AccountsError(f"{path}: cannot read: {exc}") from exc
    return parse_accounts(text, where=str(path))


def write_accounts(
    path: Path, accounts: dict[str, Account], *, group_from: Path | None = None
) -> None:
    """Replace the file atomically with ``accounts``: mode 0640, the old file's group (a new
    one: ``group_from``'s group, when this user may give it)."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        old_gid: int | None = path.stat().st_gid
    except FileNotFoundError:
        old_gid = None
        if group_from is not None:
            with contextlib.suppress(OSError):
                old_gid = group_from.stat().st_gid
    except OSError as exc:
        raise AccountsError(f"{path}: {exc.strerror}") from exc
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    except OSError as exc:
        raise AccountsError(f"{folder}: cannot write there: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), FILE_MODE)
            if old_gid is not None and old_gid != os.getegid():
                with contextlib.suppress(OSError):  # not root: the file keeps our group
                    os.fchown(f.fileno(), -1, old_gid)
            f.write(format_accounts(accounts))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise AccountsError(f"{path}: cannot write: {exc.strerror}") from exc
    with contextlib.suppress(OSError):  # the rename reaches the disk too (power loss)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _fail(message: str) -> int:
    print(f"kiosk passwd: {message}", file=sys.stderr)
    return EX_USAGE
