"""Building the core: pass keys refreshed from the service and kept for offline use."""

from __future__ import annotations

import json

from kiosk.clock import FakeClock
from kiosk.config import load_config
from kiosk.core import LAST_GOOD_KEYS, build_core
from kiosk.reasons import Decision, Reason
from kiosk.status.http import HttpStatusClient
from simulators.issuer import PassIssuer, write_key_pair
from support import TOKEN, write_config


def test_rotated_key_arrives_from_the_service_and_survives_offline(
    tmp_path, status_service, population
):
    rotated_key = write_key_pair(tmp_path / "k2.pem", tmp_path / "k2.jwks.json", kid="sim2")
    new_issuer = PassIssuer(rotated_key, kid="sim2", iss="ashyq-sim")
    status_service.jwks = new_issuer.jwks()
    cfg = load_config(write_config(tmp_path, status_service.url))
    clock = FakeClock()
    text = new_issuer.mint(population.with_status("green")[0].sub, "green", iat=int(clock.time()))

    core = build_core(cfg, clock=clock, persistent=True)
    assert core.checker.check(text, policy=cfg.policy).verdict.reason is Reason.UNTRUSTED_KEY
    assert core.keys.refresh(HttpStatusClient(status_service.url, token=TOKEN))
    assert core.checker.check(text, policy=cfg.policy).verdict.decision is Decision.ADMIT
    core.close()

    saved = json.loads((cfg.state_dir / LAST_GOOD_KEYS).read_text())
    assert saved["keys"][0]["kid"] == "sim2"
    # A restart while the service is down still knows the rotated key.
    status_service.faults.set(down=True)
    core = build_core(cfg, clock=clock, persistent=True)
    assert core.keys().get("sim2") is not None and core.keys().get("sim1") is not None
    core.close()


def test_bad_key_document_keeps_the_old_keys(tmp_path, status_service):
    status_service.jwks = {"not": "a key set"}
    cfg = load_config(write_config(tmp_path, status_service.url))
    core = build_core(cfg, clock=FakeClock(), persistent=True)
    assert not core.keys.refresh(HttpStatusClient(status_service.url, token=TOKEN))
    assert core.keys().kids() == ["sim1"]
    core.close()
