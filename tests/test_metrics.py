"""The kiosk's metrics: display.md's names, kinds and labels, fed by the gate, no person."""

from __future__ import annotations

import logging
import os
from types import MappingProxyType

from prometheus_client.parser import text_string_to_metric_families

from kiosk.gate.view import HEALTH_PARTS, GateView
from kiosk.metrics import Metrics, TextfileWriter, TimedLookup
from kiosk.status.answer import LookupResult, Outcome

# display.md's table: name -> (kind, labels). Counters are named without _total by the
# parser (the family), with _total on their samples.
SPEC = {
    "ashyq_decisions": ("counter", {"decision", "reason", "via", "source"}),
    "ashyq_decision_latency_seconds": ("histogram", set()),
    "ashyq_status_lookup_seconds": ("histogram", {"backend", "outcome"}),
    "ashyq_passages": ("counter", {"direction"}),
    "ashyq_forced_passages": ("counter", set()),
    "ashyq_passage_timeouts": ("counter", set()),
    "ashyq_occupancy": ("gauge", set()),
    "ashyq_capacity": ("gauge", set()),
    "ashyq_mode": ("gauge", {"mode"}),
    "ashyq_device_up": ("gauge", {"device"}),
    "ashyq_outbox_backlog_events": ("gauge", set()),
    "ashyq_camera_frames": ("counter", set()),
    "ashyq_camera_decodes": ("counter", set()),
    "ashyq_build_info": ("gauge", {"version"}),
}
SUBJECT = "iin:921029350851"
PSEUDONYM = "3f9a1c0d5e7b2a4c6d8e"


def families(metrics: Metrics):
    return {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}


def value(metrics: Metrics, sample: str, **labels: str) -> float | None:
    for family in families(metrics).values():
        for s in family.samples:
            if s.name == sample and s.labels == labels:
                return s.value
    return None


def decision(**kw):
    event = {
        "type": "decision",
        "decision": "admit",
        "reason": "admitted",
        "via": "online",
        "source": "camera",
        "subject": PSEUDONYM,
        "latency_ms": 42.0,
    }
    return event | kw


def fed() -> tuple[Metrics, GateView]:
    metrics = Metrics(version="0.1.0", camera_stats=lambda: (1200, 7))
    view = GateView()
    view.subscribe(metrics)
    health = dict.fromkeys(HEALTH_PARTS, "ok") | {"scanner": "off", "clock": "down"}
    view.publish(
        mode="lockdown", occupancy=12, capacity=50, backlog=3, health=MappingProxyType(health)
    )
    view.recorded(decision())
    view.recorded(decision(decision="deny", reason="expired", via="pass", source="scanner"))
    view.recorded(decision(decision="refer", reason="backend_unavailable", via="none"))
    view.recorded({"type": "passage", "direction": "entry", "subject": PSEUDONYM})
    view.recorded({"type": "passage", "direction": "exit", "subject": None})
    view.recorded({"type": "forced_passage", "subject": None})
    view.recorded({"type": "passage_timeout", "subject": PSEUDONYM})
    metrics.lookup_observed("http", "answer", 0.12)
    return metrics, view


def test_the_scrape_has_exactly_display_mds_names_kinds_and_labels():
    metrics, _ = fed()
    found = families(metrics)
    assert set(found) == set(SPEC)
    for name, (kind, labels) in SPEC.items():
        family = found[name]
        assert family.type == kind, name
        sample_labels = {k for s in family.samples for k in s.labels if k != "le"}
        assert sample_labels == labels, name


def test_recorded_events_count():
    metrics, _ = fed()
    labels = {"decision": "admit", "reason": "admitted", "via": "online", "source": "camera"}
    assert value(metrics, "ashyq_decisions_total", **labels) == 1
    assert value(metrics, "ashyq_decision_latency_seconds_count") == 3
    assert value(metrics, "ashyq_decision_latency_seconds_sum") == 0.126
    assert value(metrics, "ashyq_passages_total", direction="entry") == 1
    assert value(metrics, "ashyq_passages_total", direction="exit") == 1
    assert value(metrics, "ashyq_forced_passages_total") == 1
    assert value(metrics, "ashyq_passage_timeouts_total") == 1
    assert value(metrics, "ashyq_status_lookup_seconds_count", backend="http", outcome="answer")
    assert value(metrics, "ashyq_camera_frames_total") == 1200
    assert value(metrics, "ashyq_camera_decodes_total") == 7
    assert value(metrics, "ashyq_build_info", version="0.1.0") == 1


def test_the_gauges_follow_the_newest_snapshot():
    metrics, view = fed()
    assert value(metrics, "ashyq_occupancy") == 12
    assert value(metrics, "ashyq_capacity") == 50
    assert value(metrics, "ashyq_outbox_backlog_events") == 3
    assert value(metrics, "ashyq_mode", mode="lockdown") == 1
    assert value(metrics, "ashyq_mode", mode="normal") == 0
    assert value(metrics, "ashyq_device_up", device="camera") == 1
    assert value(metrics, "ashyq_device_up", device="clock") == 0
    assert value(metrics, "ashyq_device_up", device="scanner") is None  # off: not configured
    assert value(metrics, "ashyq_device_up", device="disk") is None  # not one of display.md's
    view.publish(mode="normal", occupancy=13)
    assert value(metrics, "ashyq_mode", mode="normal") == 1
    assert value(metrics, "ashyq_occupancy") == 13


def test_no_label_ever_carries_a_subject_code_or_pseudonym():
    metrics, view = fed()
    # Bugs elsewhere that put a person into a label's field: all of them end as "other".
    view.recorded(decision(reason=SUBJECT, via=PSEUDONYM, source="eyJhbGciOiJFZERTQSJ9"))
    view.recorded({"type": "passage", "direction": SUBJECT})
    metrics.lookup_observed(SUBJECT, PSEUDONYM, 0.3)
    text = metrics.exposition().decode()
    for leak in (SUBJECT, "921029350851", PSEUDONYM, "eyJhbGci"):
        assert leak not in text
    assert (
        value(
            metrics,
            "ashyq_decisions_total",
            decision="admit",
            reason="other",
            via="other",
            source="other",
        )
        == 1
    )
    assert value(metrics, "ashyq_status_lookup_seconds_count", backend="other", outcome="other")


def test_a_failing_camera_statistic_does_not_break_the_scrape(caplog):
    metrics = Metrics(version="0.1.0")
    assert value(metrics, "ashyq_camera_frames_total") == 0

    def broken() -> tuple[int, int]:
        raise RuntimeError("driver bug")

    metrics.set_camera_stats(broken)
    with caplog.at_level(logging.ERROR):
        assert value(metrics, "ashyq_camera_decodes_total") == 0
    assert "camera statistics" in caplog.text


def test_the_registry_is_the_kiosks_own():
    from prometheus_client import REGISTRY

    Metrics(version="0.1.0")
    assert "ashyq_decisions" not in {m.name for m in REGISTRY.collect()}


def test_a_timed_lookup_reports_its_time_and_outcome():
    class Inner:
        closed = False

        def lookup(self, subject: str, *, deadline_s: float) -> LookupResult:
            return LookupResult(Outcome.UNKNOWN)

        def close(self) -> None:
            self.closed = True

    metrics = Metrics(version="0.1.0")
    inner = Inner()
    timed = TimedLookup(inner, metrics, "mqtt")
    assert timed.lookup(SUBJECT, deadline_s=0.8).outcome is Outcome.UNKNOWN
    timed.close()
    assert inner.closed
    count = value(
        metrics, "ashyq_status_lookup_seconds_count", backend="mqtt", outcome="unknown_subject"
    )
    assert count == 1


def test_the_textfile_is_written_and_replaced_atomically(tmp_path):
    metrics, view = fed()
    path = tmp_path / "ashyq.prom"
    writer = TextfileWriter(metrics, str(path), period_s=60)
    assert writer.write_once()
    first = path.stat().st_ino
    assert "ashyq_occupancy 12.0" in path.read_text()
    view.publish(occupancy=14)
    assert writer.write_once()
    # A new file renamed over the old one: a reader never sees half a file.
    assert path.stat().st_ino != first
    assert "ashyq_occupancy 14.0" in path.read_text()
    assert os.listdir(tmp_path) == ["ashyq.prom"]  # no temporary file left behind
    names = {f.name for f in text_string_to_metric_families(path.read_text())}
    assert names == set(SPEC)


def test_the_textfile_thread_writes_at_once_and_stops(tmp_path):
    metrics, _ = fed()
    path = tmp_path / "ashyq.prom"
    writer = TextfileWriter(metrics, str(path), period_s=3600).start()
    writer.stop()  # the first write comes before the first wait, so it is there now
    assert "ashyq_build_info" in path.read_text()


def test_an_unwritable_textfile_is_one_journal_line(tmp_path, caplog):
    metrics, _ = fed()
    writer = TextfileWriter(metrics, str(tmp_path / "missing" / "ashyq.prom"), period_s=60)
    with caplog.at_level(logging.INFO):
        assert not writer.write_once()
        assert not writer.write_once()
        (tmp_path / "missing").mkdir()
        assert writer.write_once()
    lines = [r.getMessage() for r in caplog.records]
    assert sum("cannot be written" in line for line in lines) == 1
    assert sum("written again" in line for line in lines) == 1


def test_the_kiosk_times_its_status_lookups_for_the_metrics(tmp_path, status_service, population):
    """display.md's ashyq_status_lookup_seconds is fed by the kiosk's own lookups."""
    from gate_rig import Rig

    rig = Rig(tmp_path, status_service.url).start()
    try:
        person = next(p for p in population.with_status("green") if p.sub.startswith("iin:"))
        rig.present(person.sub[4:])  # a bare IIN: always asked online
        rig.decisions(1)
    finally:
        rig.stop()
    text = rig.kiosk.metrics.exposition().decode()
    counts = {
        s.labels["outcome"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "ashyq_status_lookup_seconds_count"
    }
    assert counts.get("answer") == 1.0, counts
    assert person.sub[4:] not in text
