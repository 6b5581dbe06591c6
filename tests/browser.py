"""Real-browser test support: Debian's Chromium driven by Playwright, and `kiosk sim --web`
as a subprocess whose JSON lines the tests read.

Playwright's own browser download is never used (``playwright install`` is not run): the
browser is /usr/bin/chromium (scripts/setup.sh installs it as root), launched headless with
a fresh profile and nothing that calls home.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from support import REPO

CHROMIUM = Path(os.environ.get("KIOSK_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 800, "height": 480}  # the Pi's 7" touchscreen
ARTIFACTS = REPO / "tests" / "artifacts" / "browser"
START_S = 60.0
_URL_LINE = re.compile(r"display (\S+)\s+console (\S+)")
_LOGIN_LINE = re.compile(r"name (\S+) password (\S+)")


def need_browser() -> None:
    """Skip (with the reason) when Chromium or Playwright is not on this machine."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/setup.sh installs it when run as root)")
    pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")


@dataclass
class SimProcess:
    """A running `kiosk sim --web 127.0.0.1:0 --json`: its URLs, its account, its events."""

    proc: subprocess.Popen[str]
    display_url: str
    console_url: str
    account: str
    password: str
    events: list[dict[str, Any]] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def base(self) -> str:
        return self.display_url.rstrip("/")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                with self._cond:
                    self.events.append(event)
                    self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def wait_event(
        self, pred: Callable[[dict[str, Any]], bool], *, since: int = 0, timeout: float = 15.0
    ) -> dict[str, Any]:
        """The first event after ``since`` that matches; fails the test after ``timeout``."""

        def find() -> dict[str, Any] | None:
            return next((e for e in self.events[since:] if pred(e)), None)

        with self._cond:
            self._cond.wait_for(lambda: find() is not None, timeout)
            found = find()
        assert found is not None, f"no such event in {self.events[since:]}"
        return found

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)


@contextlib.contextmanager
def kiosk_sim_web(*args: str, state_dir: Path) -> Iterator[SimProcess]:
    """Start `kiosk sim --web 127.0.0.1:0 --json ARGS` and wait for its first two lines."""
    cmd = [sys.executable, "-m", "kiosk.cli", "sim", "--web", "127.0.0.1:0", "--json"]
    cmd += ["--state-dir", str(state_dir), *args]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None and proc.stderr is not None
    errors: list[str] = []
    threading.Thread(target=lambda: errors.extend(proc.stderr or []), daemon=True).start()
    try:
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        urls, login = _URL_LINE.search(first), _LOGIN_LINE.search(second)
        if not (urls and login):
            proc.kill()
            proc.wait(5)
            raise AssertionError(f"kiosk sim --web began with {first!r} {second!r}: {errors}")
        sim = SimProcess(proc, urls[1], urls[2], login[1], login[2], stderr=errors)
        threading.Thread(target=sim._read, daemon=True).start()
        yield sim
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright browser context on Debian's Chromium with a fresh profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="kiosk-chromium-") as d:
        context = pw.chromium.launch_persistent_context(
            d,
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,
            locale="en-GB",
        )
        try:
            yield context
        finally:
            context.close()


def screenshot_path(name: str) -> Path:
    """tests/artifacts/browser/NAME.png (ignored by git)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"


def screenshot(page: Any, name: str) -> Path:
    """Save what the page shows as tests/artifacts/browser/NAME.png."""
    path = screenshot_path(name)
    page.screenshot(path=str(path))
    return path


def wait_until(pred: Callable[[], bool], timeout: float = 10.0, every: float = 0.05) -> bool:
    """Poll ``pred`` (for state outside the page; the page is waited on with Playwright)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(every)
    return pred()
