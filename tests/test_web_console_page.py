"""The console's page in a real headless Chromium: login, live push, actions, the simulated
world's controls, logout, a viewer's disabled buttons (skipped without Chromium)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from cdp import chromium, start
from test_web_console import Gate, SimDouble, accounts_file

from kiosk.clock import rfc3339_ms
from kiosk.gate.view import GateView
from kiosk.web.console import register
from kiosk.web.server import Routes, WebServer, free_port

pytestmark = pytest.mark.skipif(chromium() is None, reason="no Chromium on this machine")


def by_id(el: str, prop: str = "textContent") -> str:
    return f"document.getElementById('{el}') && document.getElementById('{el}').{prop}"


def test_the_console_page_works_in_a_browser(tmp_path) -> None:
    view, gate, sim = GateView(), Gate(), SimDouble()
    routes = Routes()
    register(
        routes,
        view=view,
        emit=gate.emit,
        accounts_file=accounts_file(tmp_path),
        sim=sim,
        timezone="UTC",
    )
    server = WebServer(routes, host="127.0.0.1", port=0).start()
    proc, page = start(free_port())
    try:
        page.send("Page.navigate", url=server.url + "/console")
        assert page.wait(f"{by_id('login', 'hidden')} === false")

        def log_in(name: str, password: str) -> None:
            page.js(
                f"document.getElementById('login-name').value = {name!r};"
                f"document.getElementById('login-password').value = {password!r};"
                "document.getElementById('login-form').requestSubmit(); 1"
            )

        log_in("alice", "not the password")
        assert page.wait(by_id("login-error")) == "Wrong account name or password."
        log_in("alice", "alice's long password")
        assert page.wait(f"{by_id('link')} === 'live'")
        assert page.js(by_id("who")) == "alice (operator)"
        assert page.js(by_id("login-password", "value")) == ""  # not kept in the form

        view.publish(mode="lockdown", occupancy=3, capacity=10)
        assert page.wait(f"{by_id('mode')} === 'lockdown'")
        assert page.js(by_id("occupancy")) == "3 / 10"
        event: dict[str, Any] = {
            "type": "decision",
            "seq": 1,
            "ts": rfc3339_ms(time.time()),
            "decision": "deny",
            "reason": "expired",
            "st": "green",
            "via": "pass",
            "source": "camera",
            "subject": "0123456789abcdef0123",
            "latency_ms": 80,
        }
        view.recorded(event)
        row = page.wait("document.querySelector('#decisions tr')?.textContent")
        assert "Code expired" in row and "0123456789abcdef0123" in row and "80 ms" in row
        assert page.js("document.querySelectorAll('#latency-chart rect').length") == 8

        page.js("document.querySelector('[data-action=open_once]').click(); 1")
        assert page.wait(f"{by_id('action-result')} === 'open_once: done'")
        assert [(c.cmd, c.origin, c.account) for c in gate.commands] == [
            ("open_once", "console", "alice")
        ]

        assert page.wait(f"{by_id('sim', 'hidden')} === false")
        page.js(
            "document.getElementById('sim-kind').value = 'passport';"
            "document.getElementById('sim-status').value = 'red';"
            "document.getElementById('sim-present').click(); 1"
        )
        assert page.wait(f"{by_id('sim-result')} === 'present: done'")
        assert sim.done == [
            {"action": "present", "kind": "passport", "status": "red", "source": "camera"}
        ]

        page.js("document.getElementById('logout').click(); 1")
        assert page.wait(f"{by_id('login-error')} === 'Logged out.'")
        log_in("bob", "bob's long password")
        assert page.wait(f"{by_id('who')} === 'bob (viewer)'")
        assert page.js("document.querySelector('[data-action=lockdown]').disabled") is True
        assert page.js(by_id("viewer-note", "hidden")) is False
    finally:
        proc.terminate()
        proc.wait(10)
        server.stop()
