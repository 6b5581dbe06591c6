"""[homeassistant]: the discovery prefix is checked like a topic, naming file and key."""

from __future__ import annotations

import pytest

from kiosk.config import load_config
from kiosk.errors import ConfigError
from support import write_config

MQTT = {"enabled": True, "brokers": ["mqtt://127.0.0.1:1883"]}


def test_off_by_default_with_the_usual_prefix(tmp_path):
    cfg = load_config(write_config(tmp_path))
    assert (cfg.homeassistant.enabled, cfg.homeassistant.prefix) == (False, "homeassistant")


def test_on_with_its_own_prefix(tmp_path):
    path = write_config(tmp_path, mqtt=MQTT, homeassistant={"enabled": True, "prefix": "ha/b"})
    assert load_config(path).homeassistant.prefix == "ha/b"


@pytest.mark.parametrize("prefix", ["", "ha/+", "ha/#", "#", "/ha", "ha/", "ha//b"])
def test_a_prefix_with_wildcards_or_empty_levels_is_refused(tmp_path, prefix):
    path = write_config(tmp_path, homeassistant={"prefix": prefix})
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    [problem] = exc.value.problems
    assert problem.startswith(f"{path}: [homeassistant] prefix: {prefix!r} must be topic levels")


def test_discovery_needs_the_fleet_link(tmp_path):
    path = write_config(tmp_path, homeassistant={"enabled": True})
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.problems == [
        f"{path}: [homeassistant] enabled: needs [mqtt] enabled = true (it publishes there)"
    ]
