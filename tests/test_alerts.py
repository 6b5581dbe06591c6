"""The example alert rules (config/alerts/): valid Prometheus rule YAML, naming only metrics
the kiosk exports."""

from __future__ import annotations

import re

import pytest

from kiosk.metrics import Metrics
from support import REPO

yaml = pytest.importorskip("yaml")  # PyYAML: in the test extras
RULES = REPO / "config" / "alerts" / "ashyq-kiosk.rules.yml"
DURATION = re.compile(r"[0-9]+[smhd]")


def rules() -> list[dict]:
    doc = yaml.safe_load(RULES.read_text())
    assert isinstance(doc, dict) and list(doc) == ["groups"]
    out = []
    for group in doc["groups"]:
        assert set(group) == {"name", "rules"} and group["rules"]
        out += group["rules"]
    return out


def exported_names() -> set[str]:
    metrics = Metrics(version="0.1.0")
    text = metrics.exposition().decode()
    names = set(re.findall(r"^# TYPE (\w+) ", text, re.M))
    names |= {m.split("{")[0].split(" ")[0] for m in text.splitlines() if not m.startswith("#")}
    return names


def test_every_rule_is_a_complete_alert():
    found = rules()
    for rule in found:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule.get("alert")
        assert re.fullmatch(r"Ashyq[A-Za-z]+", rule["alert"])
        assert DURATION.fullmatch(rule["for"])
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")")
    names = {r["alert"] for r in found}
    assert {
        "AshyqKioskOffline",
        "AshyqDeviceDown",
        "AshyqOutboxBacklogGrowing",
        "AshyqClockUntrusted",
    } <= names


def test_every_metric_named_exists_in_the_kiosk():
    exported = exported_names()
    named = {m for rule in rules() for m in re.findall(r"\bashyq_\w+", rule["expr"])}
    assert named and named <= exported, named - exported
    assert "ashyq_device_up" in named and "ashyq_outbox_backlog_events" in named


def test_the_device_labels_named_exist():
    devices = {d for rule in rules() for d in re.findall(r'device!?="(\w+)"', rule["expr"])}
    from kiosk.metrics import DEVICES

    assert devices and devices <= set(DEVICES)
