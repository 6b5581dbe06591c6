"""Scratch git repositories of this checkout, for the release tests: tag them, build them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from support import REPO

GIT_ENV = {
    "GIT_AUTHOR_NAME": "release test",
    "GIT_AUTHOR_EMAIL": "release@test.invalid",
    "GIT_COMMITTER_NAME": "release test",
    "GIT_COMMITTER_EMAIL": "release@test.invalid",
}


def git(repo: Path, *args: str) -> str:
    """Runs git in ``repo`` with a test identity; its standard output, stripped."""
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        check=True,
    )
    return done.stdout.strip()


def snapshot(dest: Path) -> Path:
    """This checkout's files as they are now (committed or not), in a new one-commit repo."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "snapshot of the checkout under test")
    return dest


def commit(repo: Path, name: str, text: str, message: str) -> None:
    """One more commit in ``repo``: ``name`` written with ``text``."""
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", message)


def build_wheel(checkout: Path, out: Path) -> Path:
    """The kiosk's wheel built from ``checkout`` into ``out``, as the installer builds it."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(checkout)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    [wheel] = out.glob("ashyq_kiosk-*.whl")
    return wheel


def wheel_version(wheel: Path) -> str:
    """The version in a wheel's file name (PEP 427: name-version-...)."""
    return wheel.name.split("-")[1]
