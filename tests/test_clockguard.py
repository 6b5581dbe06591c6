"""The clock guard: a clock gone back or never synchronised refers offline pass decisions."""

from __future__ import annotations

import logging
import time

from kiosk.clock import FakeClock
from kiosk.clockguard import ClockGuard, kernel_clock_synchronised
from kiosk.config import load_config
from kiosk.core import build_core
from kiosk.reasons import Decision, Reason, Via
from support import write_config


def test_high_water_mark_survives_a_restart(tmp_path):
    clock = FakeClock(1_800_000_000)
    guard = ClockGuard(tmp_path / "clock.hwm", clock=clock, leeway_s=30, synchronised=lambda: True)
    assert guard.trusted()
    clock.advance(100)
    guard.trusted()
    guard.save()
    clock.set_wall(1_800_000_000 - 3600)  # a Pi without a battery clock, booted with old time
    sync: list[bool | None] = [None]  # NTP has not answered yet
    again = ClockGuard(
        tmp_path / "clock.hwm", clock=clock, leeway_s=30, synchronised=lambda: sync[0]
    )
    assert again.problem() == "went back by 3700 s"
    clock.set_wall(1_800_000_100 - 29)  # within the leeway
    assert again.trusted()


def test_ntp_wins_over_a_mark_saved_from_a_clock_running_ahead(tmp_path):
    (tmp_path / "clock.hwm").write_text("1900000000\n")  # saved by a clock years ahead
    clock = FakeClock(1_800_000_000)
    guard = ClockGuard(tmp_path / "clock.hwm", clock=clock, leeway_s=30, synchronised=lambda: True)
    assert guard.trusted() and guard.high_water_mark == 1_800_000_000


def test_never_synchronised(tmp_path, caplog):
    guard = ClockGuard(None, clock=FakeClock(), leeway_s=30, synchronised=lambda: False)
    assert guard.problem() == "never synchronised"
    assert "clock untrusted: never synchronised; offline pass decisions are referred" in caplog.text
    assert ClockGuard(None, clock=FakeClock(), leeway_s=30, synchronised=lambda: None).trusted()


def test_kernel_answer_is_a_bool_or_none():
    assert kernel_clock_synchronised() in (True, False, None)


def test_offline_pass_is_referred_when_the_clock_is_not_trusted(
    tmp_path, status_service, population, issuer
):
    status_service.faults.set(down=True)
    cfg = load_config(
        write_config(
            tmp_path,
            status_service.url,
            policy={"offline_rule": "pass"},
            status={"deadline_ms": 200},
        )
    )
    trusted = [True]
    core = build_core(
        cfg, clock=FakeClock(time.time()), persistent=True, clock_trusted=lambda: trusted[0]
    )
    text = issuer.mint(population.with_status("green")[0].sub, "green", iat=int(core.clock.time()))
    v = core.checker.check(text, policy=cfg.policy).verdict
    assert (v.decision, v.via) == (Decision.ADMIT, Via.PASS)
    trusted[0] = False
    v = core.checker.check(text, policy=cfg.policy).verdict
    assert (v.decision, v.reason, v.via) == (Decision.REFER, Reason.CLOCK_UNTRUSTED, Via.NONE)
    core.close()


def test_each_change_of_trust_is_one_line(caplog):
    clock = FakeClock(1_800_000_000)
    sync: list[bool | None] = [True]
    guard = ClockGuard(None, clock=clock, leeway_s=30, synchronised=lambda: sync[0])
    with caplog.at_level(logging.INFO, logger="kiosk.clockguard"):
        assert guard.trusted()
        clock.set_wall(1_800_000_000 - 600)
        sync[0] = None  # NTP cannot say: the mark decides
        for _ in range(3):
            clock.advance(1)  # "went back by N s" changes every second: still one line
            assert not guard.trusted()
        clock.set_wall(1_800_000_010)
        assert guard.trusted()
        sync[0] = False
        assert not guard.trusted() and not guard.trusted()
        sync[0] = True
        assert guard.trusted()
    assert [r.getMessage() for r in caplog.records] == [
        "clock untrusted: went back by 599 s; offline pass decisions are referred",
        "clock trusted again",
        "clock untrusted: never synchronised; offline pass decisions are referred",
        "clock trusted again",
    ]


def test_the_kernel_can_be_stood_in_for(monkeypatch):
    import kiosk.clockguard

    monkeypatch.setattr(kiosk.clockguard, "kernel_clock_synchronised", lambda: False)
    assert ClockGuard(None, clock=FakeClock(), leeway_s=30).problem() == "never synchronised"


def test_the_event_and_the_journal_name_clock_untrusted(tmp_path, population, issuer, caplog):
    """The real daemon in the simulated world: NTP never answered, the service is down."""
    import threading

    from kiosk.daemon import Daemon
    from kiosk.gate.inputs import CodeRead
    from kiosk.reasons import Source
    from simulators.world import World

    cfg = load_config(
        write_config(
            tmp_path,
            "http://127.0.0.1:9",
            gpio={"pin_factory": "mock"},
            policy={"offline_rule": "pass"},
            status={"deadline_ms": 200},
        )
    )
    world = World(cfg, population=population)
    events: list[dict] = []
    decided = threading.Event()

    def on_event(e: dict) -> None:
        events.append(e)
        if e["type"] == "decision":
            decided.set()

    try:
        cfg = world.simulated(cfg, state_dir=tmp_path / "state")
        world.clock_synchronised = False
        world.service.faults.set(down=True)
        daemon = Daemon(cfg, sim=world.hardware(), on_event=on_event)
        runner = threading.Thread(target=daemon.run)
        with caplog.at_level(logging.INFO):
            runner.start()
            p = population.with_status("green")[0]
            text = issuer.mint(p.sub, "green", iat=int(time.time()))
            daemon.controller.emit(CodeRead(text.encode(), Source.SCANNER, time.monotonic()))
            assert decided.wait(30)
            daemon.stop()
            runner.join(30)
    finally:
        world.close()
    # The kiosk knows it is offline: the idle light blinks amber (gate.md indicators).
    assert daemon.controller._offline
    d = next(e for e in events if e["type"] == "decision")
    assert (d["decision"], d["reason"], d["via"]) == ("refer", "clock_untrusted", "none")
    messages = [r.getMessage() for r in caplog.records]
    assert (
        messages.count("clock untrusted: never synchronised; offline pass decisions are referred")
        == 1
    )
    assert "offline pass decision referred: the clock is not trusted" in messages
    assert p.sub.split(":")[-1] not in caplog.text


def test_two_threads_asking_never_move_the_mark_back():
    """The controller's checker and the housekeeping both ask: the mark only ever grows."""
    import threading

    from kiosk.clock import FakeClock
    from kiosk.clockguard import ClockGuard

    clock = FakeClock(1_700_000_000.0)
    guard = ClockGuard(None, clock=clock, leeway_s=30.0, synchronised=lambda: True)
    marks: list[float] = []

    def ask() -> None:
        for _ in range(2000):
            clock.advance(0.001)
            guard.problem()
            marks.append(guard.high_water_mark)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert guard.high_water_mark == clock.time()
    assert guard.problem() is None
