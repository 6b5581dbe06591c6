"""`kiosk release` (systemd's ExecStopPost): the relay ends released whatever was left."""

from __future__ import annotations

import argparse
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

import drivers.pins
from drivers.gpio import RelayTurnstile
from kiosk.config import load_config
from kiosk.release import cmd_release, release_relay
from support import write_config

RELAY = 17


def _energised_by_a_crashed_daemon(factory: MockFactory, *, active_high: bool) -> None:
    """Leave the relay pin driven to its energised level, as a killed daemon would."""
    pin = factory.pin(RELAY)
    pin.function = "output"
    pin.state = active_high


@pytest.mark.parametrize("active_high", [True, False])
@pytest.mark.parametrize("fail_safe", [False, True])
def test_release_leaves_the_pin_at_the_released_level(tmp_path, active_high, fail_safe):
    cfg = load_config(
        write_config(
            tmp_path,
            gpio={"pin_factory": "mock", "relay": RELAY, "relay_active_high": active_high},
            gate={"fail_safe": fail_safe},
        )
    )
    factory = MockFactory()
    _energised_by_a_crashed_daemon(factory, active_high=active_high)

    release_relay(cfg, mock_factory=factory)

    # Released = de-energised: low on an active-high relay board, HIGH on an active-low one.
    # fail_safe changes what a released relay means for the turnstile, never the level.
    assert factory.pin(RELAY).state is (not active_high)
    # The pin was handed back: a new owner (the restarted daemon) can claim it.
    RelayTurnstile(RELAY, active_high=active_high, pin_factory=factory).close()


def test_release_builds_only_the_relay(tmp_path):
    cfg = load_config(write_config(tmp_path, gpio={"pin_factory": "mock"}))
    factory = MockFactory()
    release_relay(cfg, mock_factory=factory)
    # LEDs, buzzer and inputs were never claimed: the only pin touched is the relay's.
    assert [info.name for info in factory.pins] == [f"GPIO{RELAY}"]


def test_cmd_release_exits_0_and_says_so(tmp_path, capsys):
    path = write_config(tmp_path, gpio={"pin_factory": "mock"}, gate={"fail_safe": True})
    assert cmd_release(argparse.Namespace(config=str(path))) == 0
    err = capsys.readouterr().err
    assert "GPIO17 released" in err and "fail-safe" in err


def test_cmd_release_config_error_exits_2_with_every_problem(tmp_path, capsys):
    path = write_config(tmp_path, gpio={"pin_factory": "mock", "relay": 99, "relai": 5})
    assert cmd_release(argparse.Namespace(config=str(path))) == 2
    err = capsys.readouterr().err.splitlines()
    assert any("[gpio] relay" in line for line in err) and any("relai" in line for line in err)
    # The relay key itself is wrong, so there is no pin to release: it says so.
    assert err[-1].startswith("kiosk release: the relay was NOT released")
    assert all(line.startswith("config error: ") for line in err[:-1])


def test_cmd_release_missing_config_exits_2(tmp_path, capsys):
    assert cmd_release(argparse.Namespace(config=str(tmp_path / "none.toml"))) == 2
    assert "none.toml" in capsys.readouterr().err


@pytest.fixture
def gpio_chip(tmp_path, monkeypatch):
    """A machine that has a GPIO chip (its device node stands in /dev)."""
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "gpiochip0").touch()
    monkeypatch.setattr(drivers.pins, "DEV_DIR", dev)
    return dev


@pytest.fixture
def no_gpio(tmp_path, monkeypatch):
    """A machine with no GPIO device at all (an empty /dev)."""
    dev = tmp_path / "nodev"
    dev.mkdir()
    monkeypatch.setattr(drivers.pins, "DEV_DIR", dev)
    return dev


def test_cmd_release_gpio_failure_exits_1_with_a_clear_message(
    tmp_path, capsys, monkeypatch, gpio_chip
):
    # lgpio is not installed on a Pi: exactly the failure a broken GPIO set-up gives.
    monkeypatch.setitem(sys.modules, "lgpio", None)
    path = write_config(tmp_path, gpio={"pin_factory": "lgpio"})
    assert cmd_release(argparse.Namespace(config=str(path))) == 1
    err = capsys.readouterr().err
    assert "could not release the turnstile relay on GPIO17" in err
    assert "python3-lgpio" in err  # the driver's hint names the package


def test_config_error_elsewhere_still_releases_the_relay_and_exits_2(tmp_path, capsys):
    # After a crash the file may have been broken since; the relay keys are all that matter.
    path = write_config(
        tmp_path,
        gpio={"pin_factory": "mock", "relay_active_high": False},
        status={"token": None, "token_file": str(tmp_path / "missing-token")},
        policy={"offline_rule": "maybe"},
    )
    factory = MockFactory()
    _energised_by_a_crashed_daemon(factory, active_high=False)

    assert cmd_release(argparse.Namespace(config=str(path)), mock_factory=factory) == 2

    assert factory.pin(RELAY).state is True  # active-low: released is high
    err = capsys.readouterr().err
    assert "token_file" in err and "offline_rule" in err
    assert "GPIO17 released" in err


def test_a_broken_configuration_releases_the_relay_a_gate_file_moved(tmp_path, capsys):
    """kiosk.d/20-gate.toml puts this gate's relay on GPIO5: released there, not on 17."""
    path = write_config(tmp_path, gpio={"pin_factory": "mock"}, policy={"offline_rule": "x"})
    (tmp_path / "kiosk.d").mkdir()
    (tmp_path / "kiosk.d" / "20-gate.toml").write_text("[gpio]\nrelay = 5\n")
    factory = MockFactory()
    pin = factory.pin(5)
    pin.function, pin.state = "output", True  # energised by the crashed daemon
    assert cmd_release(argparse.Namespace(config=str(path)), mock_factory=factory) == 2
    assert factory.pin(5).state is False
    assert "GPIO5 released" in capsys.readouterr().err


def test_a_broken_gate_file_means_the_relay_keys_are_unknown(tmp_path, capsys):
    path = write_config(tmp_path, gpio={"pin_factory": "mock"})
    (tmp_path / "kiosk.d").mkdir()
    (tmp_path / "kiosk.d" / "20-gate.toml").write_text("[gpio\nrelay = 5\n")
    assert cmd_release(argparse.Namespace(config=str(path))) == 2
    err = capsys.readouterr().err
    assert "20-gate.toml: not valid TOML" in err and "NOT released" in err


def test_unreadable_relay_keys_say_the_relay_was_not_released(tmp_path, capsys):
    path = tmp_path / "kiosk.toml"
    path.write_text("[gpio\nrelay = 17\n")
    assert cmd_release(argparse.Namespace(config=str(path))) == 2
    assert "NOT released" in capsys.readouterr().err


# -- a machine without GPIO -------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent


def _no_default_pin_library(monkeypatch):
    """gpiozero's default choice finds no library, as on a machine without GPIO."""
    for module in ("lgpio", "RPi", "RPi.GPIO", "pigpio"):
        monkeypatch.setitem(sys.modules, module, None)


@pytest.mark.parametrize("pin_factory", ["default", "lgpio", "rpigpio"])
def test_no_gpio_at_all_says_one_line_and_exits_0(
    tmp_path, capsys, monkeypatch, no_gpio, pin_factory
):
    _no_default_pin_library(monkeypatch)
    path = write_config(tmp_path, gpio={"pin_factory": pin_factory})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a library warning reaching the caller fails here
        assert cmd_release(argparse.Namespace(config=str(path))) == 0
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("kiosk release: no GPIO on this machine (")
    assert line.endswith("; nothing to release")


def test_no_gpio_with_a_config_error_still_exits_2(tmp_path, capsys, monkeypatch, no_gpio):
    _no_default_pin_library(monkeypatch)
    path = write_config(tmp_path, policy={"offline_rule": "maybe"})
    assert cmd_release(argparse.Namespace(config=str(path))) == 2
    err = capsys.readouterr().err.splitlines()
    assert "offline_rule" in err[0] and "no GPIO on this machine" in err[-1]


def test_gpio_that_fails_names_what_gpiozero_tried_in_one_line(
    tmp_path, capsys, monkeypatch, gpio_chip
):
    # A Pi whose GPIO library is missing: not "nothing to release", a failure (exit 1).
    _no_default_pin_library(monkeypatch)
    path = write_config(tmp_path)  # pin_factory = "default"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cmd_release(argparse.Namespace(config=str(path))) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("kiosk release: could not release the turnstile relay on GPIO17")
    assert "gpiozero tried lgpio:" in line and "python3-lgpio" in line


@pytest.mark.skipif(drivers.pins.gpio_present(), reason="this machine has GPIO")
def test_installed_command_on_this_machine_without_gpio(tmp_path):
    """What systemd's ExecStopPost runs, as a process: one line on stderr, no warnings."""
    path = write_config(tmp_path)  # pin_factory = "default": gpiozero's own choice
    run = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "release", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and "Warning" not in run.stderr, run.stderr
    assert lines[0].startswith("kiosk release: no GPIO on this machine")
    assert run.stdout == ""
