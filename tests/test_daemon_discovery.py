"""The daemon with [homeassistant] enabled publishes the discovery configs on its link."""

from __future__ import annotations

import json
import threading

from kiosk.config import load_config
from kiosk.daemon import Daemon
from mqtt_support import Observer
from simulators.world import World
from support import write_config


def test_the_daemon_announces_itself_to_home_assistant(tmp_path, mosquitto):
    cfg = load_config(
        write_config(
            tmp_path,
            None,
            mqtt={"enabled": True, "brokers": [mosquitto.url]},
            homeassistant={"enabled": True},
            gpio={"pin_factory": "mock"},
        )
    )
    watcher = Observer(mosquitto, "homeassistant/#")
    world = World(cfg)
    cfg = world.simulated(cfg, state_dir=tmp_path / "state")
    daemon = Daemon(cfg, sim=world.hardware())
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        topic = "homeassistant/binary_sensor/k1/turnstile/config"
        [payload, *_] = watcher.wait_for(lambda ps: ps, topic)
        doc = json.loads(payload)
        assert doc["state_topic"] == "ashyq/v1/kiosk/k1/state"
        assert doc["device"]["sw_version"] == daemon.view.snapshot().kiosk_version
    finally:
        daemon.stop()
        runner.join(15)
        world.close()
        watcher.close()
