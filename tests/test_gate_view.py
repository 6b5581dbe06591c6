"""The observable gate: snapshots, observers, waiting readers, recent records."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from kiosk.gate.notes import DeviceNote, ForcedNote
from kiosk.gate.view import HEALTH_PARTS, GateSnapshot, GateView, LastDecision
from kiosk.logs import where


class Recorder:
    def __init__(self) -> None:
        self.snapshots: list[GateSnapshot] = []
        self.records: list[Mapping[str, Any]] = []

    def gate_changed(self, snapshot: GateSnapshot) -> None:
        self.snapshots.append(snapshot)

    def recorded(self, event: Mapping[str, Any]) -> None:
        self.records.append(event)


def test_a_change_makes_a_new_version_and_tells_observers() -> None:
    view = GateView()
    seen = Recorder()
    view.subscribe(seen)
    snap = view.publish(mode="lockdown", light="locked")
    assert snap.version == 1 and snap.mode == "lockdown"
    assert view.snapshot() is snap
    assert seen.snapshots == [snap]


def test_publishing_the_same_state_again_is_no_change() -> None:
    view = GateView()
    seen = Recorder()
    view.subscribe(seen)
    view.publish(turnstile="free")
    view.publish(turnstile="free")
    assert view.snapshot().version == 1 and len(seen.snapshots) == 1


def test_health_starts_off_and_changes_one_part() -> None:
    view = GateView()
    assert set(view.snapshot().health) == set(HEALTH_PARTS)
    assert all(v == "off" for v in view.snapshot().health.values())
    view.set_health("camera", "ok")
    view.set_health("camera", "ok")
    assert view.snapshot().health["camera"] == "ok" and view.snapshot().version == 1
    with pytest.raises(ValueError):
        view.set_health("camera", "broken")
    with pytest.raises(ValueError):
        view.set_health("toaster", "ok")


def test_snapshots_cannot_be_changed_by_readers() -> None:
    view = GateView()
    snap = view.snapshot()
    with pytest.raises(TypeError):
        snap.health["camera"] = "ok"  # type: ignore[index]
    with pytest.raises(AttributeError):
        snap.mode = "emergency"  # type: ignore[misc]


def test_records_are_kept_newest_last_and_filtered_by_type() -> None:
    view = GateView()
    seen = Recorder()
    view.subscribe(seen)
    for i in range(5):
        view.recorded({"type": "decision" if i % 2 == 0 else "passage", "seq": i})
    assert [e["seq"] for e in view.recent(2)] == [3, 4]
    assert [e["seq"] for e in view.recent(type_="decision")] == [0, 2, 4]
    assert len(seen.records) == 5
    with pytest.raises(TypeError):
        view.recent()[0]["seq"] = 9  # type: ignore[index]


def test_a_waiting_reader_wakes_on_the_next_change() -> None:
    view = GateView()
    got: list[GateSnapshot] = []
    reader = threading.Thread(target=lambda: got.append(view.wait_for_change(0, 10.0)))
    reader.start()
    view.publish(
        last_decision=LastDecision("admit", "admitted", "green", "online", "camera", 2.0, 1.0)
    )
    reader.join(10)
    assert got and got[0].version == 1 and got[0].last_decision is not None


def test_wait_returns_at_once_when_already_newer_and_on_timeout() -> None:
    view = GateView()
    view.publish(mode="closed")
    assert view.wait_for_change(0, 0.0).version == 1
    assert view.wait_for_change(1, 0.0).version == 1  # nothing newer: the current one


def test_a_failing_observer_is_logged_with_where_and_the_rest_still_hear(caplog) -> None:
    class Broken(Recorder):
        def gate_changed(self, snapshot: GateSnapshot) -> None:
            raise RuntimeError("iin:921029350851 must never be logged")

    view = GateView()
    good = Recorder()
    view.subscribe(Broken())
    view.subscribe(good)
    with caplog.at_level(logging.ERROR):
        view.publish(mode="emergency")
    assert len(good.snapshots) == 1
    assert "test_gate_view.py" in caplog.text and "921029350851" not in caplog.text


def test_unsubscribe_stops_the_news() -> None:
    view = GateView()
    seen = Recorder()
    stop = view.subscribe(seen)
    stop()
    stop()
    view.publish(mode="closed")
    assert seen.snapshots == []


def test_where_names_the_file_and_line_not_the_message() -> None:
    try:
        raise ValueError("secret text")
    except ValueError as exc:
        text = where(exc)
    assert "test_logs" not in text and "test_gate_view.py:" in text and "secret" not in text


def test_notes_go_to_observers_that_hear_them_and_skip_the_rest(caplog) -> None:
    """``noted`` is optional: an observer without it is skipped; a failing one is logged
    with where it failed (never the note) and the others still hear."""
    heard: list[object] = []

    class Broken(Recorder):
        def noted(self, note: object) -> None:
            raise RuntimeError(f"bug while saying {note!r}")

    class Listener(Recorder):
        def noted(self, note: object) -> None:
            heard.append(note)

    view = GateView()
    plain = Recorder()  # the two GateObserver methods only
    view.subscribe(plain)
    view.subscribe(Broken())
    view.subscribe(Listener())
    with caplog.at_level(logging.ERROR):
        view.note(DeviceNote("scanner", False, "port path vanished"))
        view.note(ForcedNote())
    assert heard == [DeviceNote("scanner", False, "port path vanished"), ForcedNote()]
    assert plain.snapshots == [] and plain.records == []  # a note is neither
    assert caplog.text.count("test_gate_view.py") == 2 and "vanished" not in caplog.text
