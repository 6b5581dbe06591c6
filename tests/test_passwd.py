"""`kiosk passwd`: the accounts file's format, permissions, atomic replacement, and the
password asked twice on a real pseudo-terminal."""

from __future__ import annotations

import io
import os
import pty
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.web.auth import Accounts, authenticate, parse_accounts
from kiosk.web.passwd import accounts_file_of
from support import write_config

REPO = Path(__file__).resolve().parent.parent


def passwd(monkeypatch, capsys, *args: str, stdin: str = "") -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(["passwd", *args])
    return code, capsys.readouterr().err


def test_an_account_is_added_with_a_slow_salted_hash_in_a_private_file(
    tmp_path, monkeypatch, capsys
) -> None:
    path = tmp_path / "accounts"
    code, err = passwd(
        monkeypatch,
        capsys,
        "alice",
        "--role",
        "operator",
        "--file",
        str(path),
        "--password-stdin",
        stdin="a long enough secret\n",
    )
    assert code == 0, err
    assert "alice (operator): account added" in err and "secret" not in err
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    text = path.read_text()
    assert "a long enough secret" not in text
    [line] = [ln for ln in text.splitlines() if not ln.startswith("#")]
    name, role, hashed = line.split(":")
    assert (name, role) == ("alice", "operator")
    assert hashed.startswith("$scrypt$n=32768,r=8,p=1$")
    assert authenticate(Accounts(path), "alice", "a long enough secret") is not None


def test_other_accounts_stay_and_a_password_change_replaces_the_file(
    tmp_path, monkeypatch, capsys
) -> None:
    path = tmp_path / "accounts"
    for name, role in (("alice", "operator"), ("bob", "viewer")):
        args = (name, "--role", role, "--file", str(path), "--password-stdin")
        assert passwd(monkeypatch, capsys, *args, stdin=f"{name} password 1\n")[0] == 0
    inode = path.stat().st_ino
    args = ("bob", "--role", "operator", "--file", str(path), "--password-stdin")
    code, err = passwd(monkeypatch, capsys, *args, stdin="bob password 2\n")
    assert code == 0 and "password changed" in err
    assert path.stat().st_ino != inode  # a new file renamed over the old one
    accounts = Accounts(path)
    assert {a.name: a.role for a in accounts.all().values()} == {
        "alice": "operator",
        "bob": "operator",
    }
    assert authenticate(accounts, "alice", "alice password 1") is not None
    assert authenticate(accounts, "bob", "bob password 2") is not None
    assert authenticate(accounts, "bob", "bob password 1") is None
    assert [p.name for p in tmp_path.iterdir()] == ["accounts"]  # no temporary left
    code, err = passwd(monkeypatch, capsys, "bob", "--remove", "--file", str(path))
    assert code == 0 and set(Accounts(path).all()) == {"alice"}


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("Alice", "--role", "viewer"), "long enough pw\n", "account name"),
        (("al:ice", "--role", "viewer"), "long enough pw\n", "account name"),
        (("alice", "--role", "viewer"), "\n", "empty"),
        (("alice", "--role", "viewer"), "short\n", "shorter than 10"),
        (("alice",), "long enough pw\n", "--role"),
    ],
)
def test_bad_names_and_passwords_are_refused_and_nothing_is_written(
    tmp_path, monkeypatch, capsys, args, stdin, message
) -> None:
    path = tmp_path / "accounts"
    code, err = passwd(
        monkeypatch, capsys, *args, "--file", str(path), "--password-stdin", stdin=stdin
    )
    assert code == 2 and message in err
    assert not path.exists()


def test_a_broken_accounts_file_is_named_and_left_alone(tmp_path, monkeypatch, capsys) -> None:
    path = tmp_path / "accounts"
    path.write_text("alice:root:xyz\n")
    args = ("bob", "--role", "viewer", "--file", str(path), "--password-stdin")
    code, err = passwd(monkeypatch, capsys, *args, stdin="long enough pw\n")
    assert code == 2 and f"{path}:1: role 'root'" in err
    assert path.read_text() == "alice:root:xyz\n"


def test_the_password_is_not_read_from_a_pipe_without_the_option(
    tmp_path, monkeypatch, capsys
) -> None:
    args = ("alice", "--role", "viewer", "--file", str(tmp_path / "a"))
    code, err = passwd(monkeypatch, capsys, *args, stdin="long enough pw\n")
    assert code == 2 and "--password-stdin" in err


def test_the_file_is_the_one_the_configuration_names(tmp_path, monkeypatch, capsys) -> None:
    cfg_path = write_config(tmp_path, None)
    from kiosk.config import load_config

    cfg = load_config(cfg_path)
    expected = accounts_file_of(cfg)
    assert expected == Path(cfg.state_dir) / "console.accounts"  # [web] accounts_file's default
    expected.parent.mkdir(parents=True)
    args = ("alice", "--role", "viewer", "--config", str(cfg_path), "--password-stdin")
    assert passwd(monkeypatch, capsys, *args, stdin="long enough pw\n")[0] == 0
    assert set(parse_accounts(expected.read_text(), where="x")) == {"alice"}


def _run_on_a_terminal(args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run `kiosk passwd` with a pseudo-terminal as its controlling terminal; type ``answers``
    at each prompt; return the exit code and everything the terminal showed."""
    master, slave = pty.openpty()
    # A new session takes the terminal as its own, then becomes `kiosk passwd` (no
    # preexec_fn: forking a threaded test process may deadlock before the exec).
    take_terminal = (
        "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0);"
        " os.execv(sys.executable, [sys.executable, '-m', 'kiosk.cli', *sys.argv[1:]])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", take_terminal, "passwd", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=REPO,
        start_new_session=True,
    )
    os.close(slave)
    shown = b""
    pending = list(answers)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 1024)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            # Answer each prompt once it is shown (echo is off only while a prompt waits;
            # typed ahead, an answer would be echoed and then flushed away).
            prompts = shown.count(b"password: ") + shown.count(b"Again: ")
            if pending and prompts > len(answers) - len(pending) and shown.endswith(b": "):
                os.write(master, pending.pop(0).encode() + b"\n")
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=30)
    os.close(master)
    return code, shown.decode(errors="replace")


def test_on_a_terminal_the_password_is_asked_twice_and_never_echoed(tmp_path) -> None:
    path = tmp_path / "accounts"
    args = ["alice", "--role", "operator", "--file", str(path)]
    code, shown = _run_on_a_terminal(args, ["terminal secret 1", "terminal secret 1"])
    assert code == 0, shown
    assert "New password:" in shown and "Again:" in shown
    assert "terminal secret" not in shown
    assert authenticate(Accounts(path), "alice", "terminal secret 1") is not None


def test_on_a_terminal_two_different_passwords_write_nothing(tmp_path) -> None:
    path = tmp_path / "accounts"
    args = ["alice", "--role", "operator", "--file", str(path)]
    code, shown = _run_on_a_terminal(args, ["terminal secret 1", "terminal secret 2"])
    assert code == 2 and "differ" in shown
    assert not path.exists()
