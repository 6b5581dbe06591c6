"""`kiosk sim` without a scenario: a steady crowd at the real daemon, one JSON line per event."""

from __future__ import annotations

import argparse
import json
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.cli import build_parser
from kiosk.reasons import Reason
from simulators.population import load
from simulators.run import SIM_CONFIG
from support import REPO


def test_sim_prints_events_and_a_summary():
    out = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "sim", "--count", "8", "--rate", "0", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    events = [json.loads(line) for line in out.stdout.splitlines()]
    decisions = [e for e in events if e["type"] == "decision"]
    assert len(decisions) == 8
    assert events[0]["type"] == "mode"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(d["reason"] in set(Reason) for d in decisions)
    assert {d["source"] for d in decisions} <= {"camera", "scanner"}
    assert "8 decisions" in out.stderr
    # Privacy: no ID of the test population anywhere in what the simulation prints.
    printed = out.stdout + out.stderr
    ids = {p.sub.split(":")[-1] for p in load().people}
    assert not [i for i in ids if i in printed]


def sim_config(tmp_path: Path, **policy: object) -> Path:
    """config/sim.toml with other [policy] values, written where its relative paths still
    resolve (they name the repository's key files)."""
    text = SIM_CONFIG.read_text().replace('"../', f'"{REPO}/')
    for key, value in policy.items():
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {json.dumps(value)}", text)
    path = tmp_path / "sim.toml"
    path.write_text(text)
    return path


def run_sim(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "sim", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=check,
        cwd=REPO,
    )


def test_the_crowd_leaves_so_the_venue_does_not_stay_full(tmp_path):
    """Without exits a capacity of 3 refuses everyone after the third passage; with people
    leaving by the exit beam the gate goes on admitting and the count stays within it."""
    cfg = sim_config(tmp_path, capacity=3)
    out = run_sim(
        "--config", str(cfg), "--count", "30", "--rate", "2", "--speed", "4", "--stay-s", "3",
        "--seed", "5",
    )  # fmt: skip
    events = [json.loads(line) for line in out.stdout.splitlines()]
    entries = [e for e in events if e["type"] == "passage" and e["direction"] == "entry"]
    exits = [e for e in events if e["type"] == "passage" and e["direction"] == "exit"]
    decisions = [e for e in events if e["type"] == "decision"]
    assert exits, out.stderr
    assert len(entries) > 3 + 2  # more people went in than the venue holds
    full_after = next(i for i, d in enumerate(decisions) if d["reason"] == "venue_full")
    later = [d["reason"] for d in decisions[full_after + 1 :]]
    assert "admitted" in later  # someone left, so someone else could go in
    counts = [e["occupancy"] for e in events if isinstance(e.get("occupancy"), int)]
    assert max(counts) <= 3 and min(counts) >= 0
    assert " left;" in out.stderr


def test_state_dir_keeps_the_store_for_inspection(tmp_path):
    state = tmp_path / "kept"
    out = run_sim("--count", "3", "--rate", "0", "--state-dir", str(state))
    assert (state / "events.sqlite").exists()
    assert f"state kept in {state}" in out.stderr
    with sqlite3.connect(state / "events.sqlite") as db:
        (n,) = db.execute("SELECT count(*) FROM events").fetchone()
    assert n >= 4  # the start's mode and three decisions


@pytest.mark.parametrize(
    "broker", ["mqtt://10.0.0.1:1883", "mqtts://broker.example.com:8883", "mqtt://[::2]:1883"]
)
def test_a_broker_off_loopback_is_refused_before_any_connection(tmp_path, monkeypatch, broker):
    from simulators import run

    cfg = sim_config(tmp_path)
    cfg.write_text(cfg.read_text() + f'\n[mqtt]\nenabled = true\nbrokers = ["{broker}"]\n')

    def no_network(*_a: object, **_k: object) -> None:
        raise AssertionError("the simulation tried to connect")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(run, "World", no_network)
    monkeypatch.setattr(run, "Daemon", no_network)
    args = build_parser().parse_args(["sim", "--config", str(cfg), "--count", "1"])
    assert main_exit(args) == 2
    assert run_sim("--config", str(cfg), "--count", "1", check=False).returncode == 2


def main_exit(args: argparse.Namespace) -> int:
    import io
    from contextlib import redirect_stderr

    err = io.StringIO()
    with redirect_stderr(err):
        code = args.func(args)
    assert "not on loopback" in err.getvalue() and "--allow-remote-broker" in err.getvalue()
    return code


def test_sim_publishes_under_its_own_prefix(tmp_path, mosquitto, observer):
    cfg = sim_config(tmp_path)
    cfg.write_text(cfg.read_text() + f'\n[mqtt]\nenabled = true\nbrokers = ["{mosquitto.url}"]\n')
    run_sim("--config", str(cfg), "--count", "2", "--rate", "0")
    topics = {t for t, _p, _props, _r in observer.messages}
    assert topics, "nothing published"
    assert all(t.startswith("sim/ashyq/v1/") for t in topics), topics
    assert "sim/ashyq/v1/kiosk/sim-kiosk-01/state" in topics


@pytest.mark.parametrize("flag", ["--speed", "--stay-s"])
def test_times_must_be_positive(flag, capsys):
    args = build_parser().parse_args(["sim", flag, "0"])
    assert args.func(args) == 2
    assert f"{flag} must be above 0" in capsys.readouterr().err
