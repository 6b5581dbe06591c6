"""The web face inside `kiosk run`: served from the daemon's own thread, fed by real
decisions, and never showing a person in any answer (display.md; privacy by design)."""

from __future__ import annotations

import http.client
import json
import threading
import time

from kiosk.config import load_config
from kiosk.daemon import Daemon
from kiosk.events import CodeRead
from kiosk.reasons import Source
from simulators.world import World
from support import write_config


def get(address: tuple[str, int], path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(*address, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


def test_answers_after_decisions_of_each_kind_carry_no_person(
    tmp_path, population, issuer, status_service
):
    green = next(p for p in population.people if p.sub.startswith("iin:") and p.st == "green")
    red = next(p for p in population.people if p.sub.startswith("iin:") and p.st == "red")
    yellow = next(p for p in population.people if p.st == "yellow")
    passport = next(p for p in population.people if p.sub.startswith("passport:"))
    pass_text = issuer.mint(passport.sub, passport.st)
    yellow_pass = issuer.mint(yellow.sub, "yellow")
    cfg = load_config(
        write_config(
            tmp_path,
            status_service.url,
            gpio={"pin_factory": "mock", "fire_alarm": -1},
            gate={"unlock_s": 0.3},
        )
    )
    world = World(cfg)
    decisions: list[dict] = []
    seen = threading.Condition()

    def on_event(event: dict) -> None:
        with seen:
            if event.get("type") == "decision":
                decisions.append(event)
            seen.notify_all()

    try:
        cfg = world.simulated(cfg, state_dir=tmp_path / "state")
        daemon = Daemon(cfg, sim=world.hardware(), on_event=on_event)
        runner = threading.Thread(target=daemon.run)
        runner.start()
        try:
            codes = [
                green.sub[4:].encode(),  # admit, online
                red.sub[4:].encode(),  # deny, status_not_allowed
                pass_text.encode(),  # a pass (a passport holder)
                yellow_pass.encode(),
                b"not a code at all",  # deny, invalid_payload
                b"921029350852",  # an IIN with a bad check digit
            ]
            for code in codes:
                daemon.controller.emit(CodeRead(code, Source.SCANNER, time.monotonic()))
            with seen:
                assert seen.wait_for(lambda: len(decisions) == len(codes), 30), decisions
            deadline = time.monotonic() + 10
            while daemon.web.server is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert daemon.web.server is not None
            address = daemon.web.server.address
            answers = {path: get(address, path) for path in ("/", "/api/display", "/healthz")}
            answers["/metrics"] = get(address, "/metrics")
        finally:
            daemon.stop()
            runner.join(15)
    finally:
        world.close()
    assert {d["decision"] for d in decisions} >= {"admit", "deny"}
    assert answers["/healthz"][0] == 200 and json.loads(answers["/healthz"][1])["ok"]
    assert json.loads(answers["/api/display"][1])["screen"] in ("idle", "admit", "deny", "refer")
    metrics = answers["/metrics"][1].decode()
    assert 'ashyq_decisions_total{decision="admit"' in metrics
    assert 'ashyq_decisions_total{decision="deny",reason="status_not_allowed"' in metrics
    secrets = {pass_text, yellow_pass, green.sub, red.sub, passport.sub, "921029350852"}
    secrets |= {s.split(":", 1)[1] for s in (green.sub, red.sub, passport.sub)}
    secrets |= {p.name for p in (green, red, yellow, passport)}
    secrets |= {d["subject"] for d in decisions if d.get("subject")}
    for path, (_, body) in answers.items():
        text = body.decode()
        for secret in secrets:
            assert secret not in text, (path, secret)
    assert not runner.is_alive()
