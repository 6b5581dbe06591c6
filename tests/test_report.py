"""`kiosk report` over a real event store (kiosk/store.py) whose events a fake clock placed at
chosen times of one day at a gym: every figure is checked."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiosk.cli import main
from kiosk.clock import FakeClock
from kiosk.report.command import Period, parse_period
from kiosk.report.query import read_period
from kiosk.report.summary import day_bounds, summarize
from kiosk.store import EventStore
from support import write_config

ZONE = ZoneInfo("Asia/Almaty")
DAY = "2026-11-30"
SUBJECTS = [f"{n:x}" * 20 for n in range(1, 10)]  # 20-hex pseudonyms: aaaa..., 1111..., etc.
PASS_REF = "d1e2a3d4b5e6e7f8a9b0"


def at(hh: int, mm: int, ss: int = 0, day: int = 30) -> float:
    return datetime(2026, 11, day, hh, mm, ss, tzinfo=ZONE).timestamp()


class Day:
    """A store being filled: each record at the local time given."""

    def __init__(self, path: Path) -> None:
        self.clock = FakeClock(at(0, 0))
        self.store = EventStore(path, kiosk_id="gym-01", venue_id="gym", clock=self.clock)

    def record(self, when: float, type_: str, **fields) -> None:
        self.clock.set_wall(when)
        self.store.record(type_, **fields)

    def admit(self, when: float, subject: str, latency_ms: float, via: str = "online") -> None:
        self.record(
            when,
            "decision",
            decision="admit",
            reason="admitted",
            st="green",
            via=via,
            source="camera",
            subject=subject,
            latency_ms=latency_ms,
        )

    def refuse(self, when: float, decision: str, reason: str, latency_ms: float, **kw) -> None:
        fields = {"st": None, "via": "none", "source": "scanner", "subject": None}
        fields.update(kw)
        self.record(
            when, "decision", decision=decision, reason=reason, latency_ms=latency_ms, **fields
        )

    def entry(self, when: float, subject: str | None, occupancy: int, **kw) -> None:
        self.record(
            when,
            "passage",
            direction="entry",
            subject=subject,
            cause="decision",
            occupancy=occupancy,
            **kw,
        )

    def exit(self, when: float, occupancy: int) -> None:
        self.record(when, "passage", direction="exit", subject=None, occupancy=occupancy)


def gym_day(path: Path) -> None:
    """The day every figure below is computed from (times local, Asia/Almaty)."""
    d = Day(path)
    s = SUBJECTS
    d.admit(at(23, 50, day=29), s[0], 1.0)  # the day before: not counted
    d.record(at(6, 59, 30), "mode", mode="normal", previous="normal", cause="start", occupancy=0)
    d.admit(at(7, 5), s[0], 3.0)
    d.entry(at(7, 5, 2), s[0], 1, pass_ref=PASS_REF, pass_exp=at(8, 0))
    d.refuse(at(7, 20), "deny", "status_not_allowed", 5.0, st="yellow", via="online", subject=s[1])
    d.admit(at(7, 40), s[2], 3.0)
    d.entry(at(7, 40, 3), s[2], 2)
    d.exit(at(8, 10), 1)
    d.refuse(at(8, 30), "refer", "backend_unavailable", 800.0, subject=s[3])  # offline from here
    d.admit(at(8, 35), s[4], 4.0, via="pass")
    d.entry(at(8, 35, 2), s[4], 2)
    d.admit(at(8, 45), s[5], 6.0)  # online again: 15 min offline
    d.record(at(8, 45, 6), "passage_timeout", subject=s[5], cause="decision")
    for n in range(6):  # the evening rush: 6 in the quarter hour from 18:00
        d.admit(at(18, 1 + n), s[6], 2.0)
        d.entry(at(18, 1 + n, 3), s[6], 3 + n)
    d.admit(at(18, 20), s[7], 2.0)
    d.entry(at(18, 20, 2), s[7], 9)
    d.record(at(18, 30), "forced_passage", subject=None, occupancy=9)
    d.refuse(at(18, 40), "deny", "invalid_iin", 1.0)
    d.record(at(19, 0), "alarm", alarm="fire", input="open")
    d.record(at(19, 1), "alarm", alarm="fire", input="closed")
    d.exit(at(20, 0), 8)
    d.record(at(21, 0), "command", cmd="lockdown", jti="j1", origin="mqtt", ok=True, error=None)
    d.record(at(21, 1), "command", cmd="resume", jti="j2", origin="mqtt", ok=False, error="aud")
    d.admit(at(0, 10) + 86400, s[8], 1.0)  # the day after: not counted
    d.store.close()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "state" / "events.sqlite"
    path.parent.mkdir()
    gym_day(path)
    return path


@pytest.fixture
def config(tmp_path: Path, store: Path) -> Path:
    return write_config(
        tmp_path,
        "http://127.0.0.1:9",
        kiosk={"state_dir": str(store.parent)},
        policy={"timezone": "Asia/Almaty"},
    )


def report(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def report_json(capsys, *args: str) -> dict:
    code, out, err = report(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_every_figure_of_the_day(capsys, config):
    r = report_json(capsys, "--config", str(config), "--day", DAY)
    assert r["timezone"] == "Asia/Almaty"
    assert r["period"] == {"from": "2026-11-30T00:00:00+05:00", "to": "2026-12-01T00:00:00+05:00"}
    assert r["kiosk_ids"] == ["gym-01"]
    assert r["decisions"]["total"] == 14
    assert r["decisions"]["by_decision"] == {"admit": 11, "deny": 2, "refer": 1}
    assert r["decisions"]["by_reason"] == {
        "admitted": 11,
        "status_not_allowed": 1,
        "backend_unavailable": 1,
        "invalid_iin": 1,
    }
    assert r["decisions"]["reason_words"]["status_not_allowed"] == (
        "Your status does not allow entry"
    )
    assert r["passages"]["entries"] == 10
    assert r["passages"]["exits"] == 2
    hours = {h["hour"][11:16]: (h["entries"], h["exits"]) for h in r["passages"]["by_hour"]}
    assert list(hours) == [f"{h:02d}:00" for h in range(7, 21)]  # quiet hours included
    assert hours["07:00"] == (2, 0)
    assert hours["08:00"] == (1, 1)
    assert hours["18:00"] == (7, 0)
    assert hours["20:00"] == (0, 1)
    assert sum(e for e, _ in hours.values()) == 10
    assert r["peak_occupancy"] == {"occupancy": 9, "at": "2026-11-30T18:20:02.000+05:00"}
    assert r["busiest_quarter_hour"] == {
        "from": "2026-11-30T18:00:00+05:00",
        "to": "2026-11-30T18:15:00+05:00",
        "entries": 6,
        "persons_per_minute": 0.4,
    }
    # Latencies sorted: 1, 2 x7, 3, 3, 4, 5, 6, 800; nearest rank: p50 the 7th, p99 the 14th.
    assert r["latency_ms"] == {"p50": 2.0, "p99": 800.0, "count": 14}
    assert r["offline"] == {
        "seconds": 900.0,
        "spans": [
            {
                "from": "2026-11-30T08:30:00.000+05:00",
                "to": "2026-11-30T08:45:00.000+05:00",
                "open": False,
            }
        ],
    }
    assert r["forced_passages"] == 1
    assert r["passage_timeouts"] == 1
    assert r["fire_alarms"] == 1
    assert r["commands"] == {"total": 2, "refused": 1}
    assert r["events"] == 33
    assert r["notes"] == []


def test_text_report_is_aligned_and_says_the_reasons_in_words(capsys, config):
    code, out, err = report(capsys, "--config", str(config), "--day", DAY)
    assert code == 0, err
    lines = out.splitlines()
    assert "Times in                    Asia/Almaty local time" in lines
    assert "Decisions                       14" in lines
    assert "  deny (refused)                 2" in lines
    assert "  status_not_allowed             1  Your status does not allow entry" in lines
    assert "  invalid_iin                    1  Code not recognised" in lines
    assert "  18:00        7      0" in lines
    assert "Peak occupancy                   9  at 18:20" in lines
    assert "Busiest quarter hour             6  entries 18:00-18:15, 0.4 persons a minute" in lines
    assert "Decision time p50 / p99        2.0 / 800.0 ms over 14 decisions" in lines
    assert "Time offline                15 min  in 1 span: 08:30-08:45" in lines
    assert "Forced passages                  1" in lines
    assert "Admissions not used              1" in lines
    assert "How these figures are counted" in lines
    # Every count ends in the same column.
    counted = ("Decisions", "Entries", "Exits", "Forced passages", "Peak occupancy")
    ends = {len(line[:34].rstrip()) for line in lines if line[:28].strip() in counted}
    assert ends == {34}
    assert {len(line) for line in lines if line.startswith("  admit (", 0)} == {34}


@pytest.mark.parametrize(
    ("lang", "line"),
    [
        ("ru", "Ваш статус не позволяет войти"),
        ("kk", "Мәртебеңіз кіруге рұқсат бермейді"),
        ("en", "Your status does not allow entry"),
    ],
)
def test_reasons_in_the_chosen_language(capsys, config, lang, line):
    code, out, _ = report(capsys, "--config", str(config), "--day", DAY, "--lang", lang)
    assert code == 0
    assert f"  status_not_allowed             1  {line}" in out.splitlines()
    r = report_json(capsys, "--config", str(config), "--day", DAY, "--lang", lang)
    assert r["decisions"]["reason_words"]["status_not_allowed"] == line


def test_never_prints_a_subject_or_pseudonym(capsys, config):
    _, text, _ = report(capsys, "--config", str(config), "--day", DAY)
    _, js, _ = report(capsys, "--config", str(config), "--day", DAY, "--json")
    for out in (text, js):
        for secret in (*SUBJECTS, PASS_REF, "j1", "j2"):
            assert secret not in out, secret


def test_from_to_in_local_time_and_rfc3339_agree(capsys, config):
    local = report_json(
        capsys, "--config", str(config), "--from", f"{DAY} 18:00", "--to", f"{DAY} 18:15"
    )
    rfc = report_json(
        capsys,
        "--config",
        str(config),
        "--from",
        "2026-11-30T13:00:00Z",
        "--to",
        "2026-11-30T18:15:00+05:00",
    )
    assert local == rfc
    assert local["decisions"]["total"] == 6
    assert local["passages"]["entries"] == 6
    assert local["offline"]["seconds"] == 0


def test_state_dir_alone_reports_in_utc_or_tz(capsys, store):
    utc = report_json(capsys, "--state-dir", str(store.parent), "--day", DAY)
    assert utc["timezone"] == "UTC"
    # The UTC day 2026-11-30 runs from 05:00 local: the 00:10 local admit of 12-01 is in it,
    # the 23:50 local of 11-29 and none before 05:00 are not.
    assert utc["decisions"]["total"] == 15
    local = report_json(capsys, "--state-dir", str(store.parent), "--day", DAY, "--tz", ZONE.key)
    assert local["decisions"]["total"] == 14
    # The store had online decisions: the kiosk has a status service, offline time counts.
    assert local["offline"]["seconds"] == 900.0


def test_default_period_is_today_in_the_venue(store):
    start, end = day_bounds(datetime(2026, 11, 30), ZONE)
    extract = read_period(store, start, end)
    s = summarize(extract, start=start, end=end, zone=ZONE, has_service=True, now=at(12, 0))
    assert parse_period(None, None, None, zone=ZONE, now=at(12, 0)) == Period(start, end)
    assert parse_period(None, None, None, zone=ZONE, now=at(23, 59, 59)) == Period(start, end)
    assert parse_period(None, None, None, zone=ZONE, now=at(0, 0) + 86400).start == end
    assert s.decisions == 14


def test_offline_span_still_open_ends_now(store):
    start, end = day_bounds(datetime(2026, 11, 30), ZONE)
    extract = read_period(store, start, at(8, 40))
    s = summarize(extract, start=start, end=at(8, 40), zone=ZONE, has_service=True, now=at(9, 0))
    assert [(sp.start, sp.end, sp.open) for sp in s.offline] == [(at(8, 30), at(8, 40), True)]
    # Today, at 08:40, with the period running to midnight: offline until now.
    s = summarize(extract, start=start, end=end, zone=ZONE, has_service=True, now=at(8, 40))
    assert [(sp.start, sp.end, sp.open) for sp in s.offline] == [(at(8, 30), at(8, 40), True)]


def test_offline_before_the_period_counts_from_its_start(store):
    extract = read_period(store, at(8, 40), at(9, 0))
    start, end = at(8, 40), at(9, 0)
    s = summarize(extract, start=start, end=end, zone=ZONE, has_service=True, now=at(23, 0))
    assert [(sp.start, sp.end) for sp in s.offline] == [(at(8, 40), at(8, 45))]


def test_a_restart_ends_an_offline_span_at_the_last_record(tmp_path):
    path = tmp_path / "events.sqlite"
    d = Day(path)
    d.refuse(at(10, 0), "refer", "backend_unavailable", 800.0)
    d.refuse(at(10, 5), "refer", "backend_unavailable", 800.0)
    d.record(at(11, 0), "mode", mode="normal", previous="normal", cause="start", occupancy=0)
    d.refuse(at(11, 30), "deny", "invalid_payload", 1.0)  # says nothing about the service
    d.store.close()
    start, end = day_bounds(datetime(2026, 11, 30), ZONE)
    s = summarize(
        read_period(path, start, end), start=start, end=end, zone=ZONE, has_service=True, now=end
    )
    assert [(sp.start, sp.end) for sp in s.offline] == [(at(10, 0), at(10, 5))]


def test_no_status_service_means_no_offline_time(capsys, tmp_path, store):
    cfg = write_config(tmp_path, None, kiosk={"state_dir": str(store.parent)})
    code, out, _ = report(capsys, "--config", str(cfg), "--day", DAY, "--tz", ZONE.key)
    assert code == 0
    assert "nothing to be offline from" in out
    assert report_json(capsys, "--config", str(cfg), "--day", DAY)["offline"] == {
        "seconds": None,
        "spans": [],
        "not_counted": "no status service configured: nothing to be offline from",
    }


def test_state_dir_alone_counts_offline_only_if_a_service_ever_answered(capsys, tmp_path):
    d = Day(tmp_path / "events.sqlite")
    d.admit(at(9, 0), SUBJECTS[0], 2.0, via="pass")  # a pass deciding alone
    d.refuse(at(9, 5), "refer", "backend_unavailable", 1.0)  # a bare IIN, nothing to ask
    d.store.close()
    code, out, _ = report(capsys, "--state-dir", str(tmp_path), "--day", DAY, "--tz", ZONE.key)
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("Time offline"))
    assert line == (
        "Time offline                     -  (no decision in this store was answered by a"
        " status service; see --config)"
    )


def test_a_period_over_two_days_labels_hours_with_the_date(capsys, config):
    args = ("--config", str(config), "--from", "2026-11-29 23:00", "--to", f"{DAY} 08:00")
    code, out, _ = report(capsys, *args)
    assert code == 0
    lines = out.splitlines()
    assert "Period                      2026-11-29 23:00 to 2026-11-30 08:00" in lines
    assert "  2026-11-30 07:00        2      0" in lines
    assert "Peak occupancy                   2  at 2026-11-30 07:40" in lines
    r = report_json(capsys, *args)
    assert r["decisions"]["by_reason"] == {"admitted": 3, "status_not_allowed": 1}
    assert [h["hour"] for h in r["passages"]["by_hour"]] == ["2026-11-30T07:00:00+05:00"]


def test_hours_across_a_daylight_saving_change(tmp_path):
    berlin = ZoneInfo("Europe/Berlin")  # 2026-10-25: 03:00 summer time is 02:00 again
    path = tmp_path / "events.sqlite"
    d = Day(path)
    first = datetime(2026, 10, 25, 1, 30, tzinfo=berlin).timestamp()
    for n in range(6):  # every half hour: 01:30, 02:00, 02:30 CEST, 02:00, 02:30, 03:00 CET
        d.entry(first + n * 1800, None, n + 1)
    d.store.close()
    start, end = day_bounds(datetime(2026, 10, 25), berlin)
    assert end - start == 25 * 3600
    s = summarize(
        read_period(path, start, end), start=start, end=end, zone=berlin, has_service=True, now=end
    )
    assert [row.entries for row in s.hours] == [1, 2, 2, 1]  # 01:00, 02:00, 02:00 again, 03:00
    assert [row.start - s.hours[0].start for row in s.hours] == [0, 3600, 7200, 10800]
