"""End to end: `kiosk report` over the store of the real daemon in simulation, while it runs
and after: its counts are the events the daemon printed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from kiosk.clock import parse_time, rfc3339_ms
from support import REPO

SIM_ARGS = ["--count", "8", "--rate", "0", "--seed", "7"]


def sim_command(state: Path) -> list[str]:
    """`kiosk sim` keeping its state in ``state``."""
    return [sys.executable, "-m", "kiosk.cli", "sim", "--state-dir", str(state), *SIM_ARGS]


def report(state: Path, since: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "kiosk.cli",
            "report",
            "--state-dir",
            str(state),
            "--tz",
            "Asia/Almaty",
            "--from",
            rfc3339_ms(since),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_report_over_a_running_simulated_kiosk(tmp_path):
    state = tmp_path / "state"
    since = time.time() - 60
    sim = subprocess.Popen(
        sim_command(state),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    during: list[dict] = []
    try:
        # While it runs: every report is either "no store yet" or a good report.
        while sim.poll() is None:
            run = report(state, since)
            if run.returncode == 0:
                during.append(json.loads(run.stdout))
            else:
                assert run.returncode == 2, run.stderr
                assert "no event store at" in run.stderr, run.stderr
        out, err = sim.communicate(timeout=120)
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait()
    assert sim.returncode == 0, err[-3000:]
    events = [json.loads(line) for line in out.splitlines()]
    decisions = [e for e in events if e["type"] == "decision"]
    assert decisions, "the simulation decided nothing"

    run = report(state, since)
    assert run.returncode == 0, run.stderr
    r = json.loads(run.stdout)
    assert r["timezone"] == "Asia/Almaty"
    assert r["kiosk_ids"] == ["sim-kiosk-01"]
    assert r["events"] == len(events)
    assert r["decisions"]["total"] == len(decisions)
    assert r["decisions"]["by_decision"] == dict(Counter(e["decision"] for e in decisions))
    assert r["decisions"]["by_reason"] == dict(Counter(e["reason"] for e in decisions))
    passages = Counter(e["direction"] for e in events if e["type"] == "passage")
    assert r["passages"]["entries"] == passages["entry"]
    assert r["passages"]["exits"] == passages["exit"]
    assert r["latency_ms"]["count"] == len(decisions)
    # Each report during the run read a consistent prefix of it: counts only grow.
    totals = [seen["decisions"]["total"] for seen in during] + [r["decisions"]["total"]]
    assert totals == sorted(totals)
    # No subject from the daemon's own output appears in the report.
    for e in events:
        if e.get("subject"):
            assert e["subject"] not in run.stdout


def parse(text: str) -> float:
    return parse_time(text)


def test_time_offline_from_the_fault_drill(tmp_path):
    # The drill takes the status service down, then brings it back: the daemon's own
    # decisions show when it decided without the service and when the service answered again.
    state = tmp_path / "state"
    since = time.time() - 60
    command = sim_command(state)[: -len(SIM_ARGS)]
    scenario = REPO / "simulators" / "scenarios" / "fault-drill.toml"
    run = subprocess.run(
        [*command, "--scenario", str(scenario), "--speed", "3"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    decisions = [e for e in map(json.loads, run.stdout.splitlines()) if e["type"] == "decision"]
    first_off = next(i for i, e in enumerate(decisions) if e["reason"] == "backend_unavailable")
    back = next(e for e in decisions[first_off:] if e["via"] == "online")
    expected = [(decisions[first_off]["ts"], back["ts"])]

    r = json.loads(report(state, since).stdout)
    spans = r["offline"]["spans"]
    assert [(parse(sp["from"]), parse(sp["to"])) for sp in spans] == [
        (pytest.approx(parse(a), abs=0.002), pytest.approx(parse(b), abs=0.002))
        for a, b in expected
    ]
    assert not spans[0]["open"]
    assert r["offline"]["seconds"] == pytest.approx(
        parse(back["ts"]) - parse(decisions[first_off]["ts"]), abs=0.002
    )
