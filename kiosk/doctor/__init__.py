"""`kiosk doctor`: one command that checks everything a kiosk needs and says what to fix.

For the technician at the gate: configuration, key sets, state folder, clock, status
service, MQTT brokers, camera, scanner and GPIO, each one line of a table (OK, WARN, FAIL or
SKIP) with what to do under every problem. Exit 0 when nothing failed (warnings allowed), 1
when something failed, 2 when the configuration does not load (nothing else is checked
then). Nothing printed holds an ID or a secret, and the relay is never energised.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from kiosk.config import Config, load_config
from kiosk.doctor.report import EXIT_CONFIG, Check, exit_code, write_json, write_table
from kiosk.errors import ConfigError
from kiosk.wiring import SimHardware

__all__ = ["Check", "add_arguments", "cmd_doctor", "collect", "run_doctor"]


def _checks(cfg: Config, sim: SimHardware) -> list[tuple[str, Callable[[], Check | list[Check]]]]:
    """Every check after the configuration, in the order the table shows them."""
    from kiosk.doctor import hardware, local, network

    return [
        ("configuration", lambda: _commissioning(cfg)),
        ("pass keys", lambda: local.check_pass_keys(cfg)),
        ("operator keys", lambda: local.check_operator_keys(cfg)),
        ("state dir", lambda: local.check_state_dir(cfg)),
        ("clock", lambda: local.check_clock(cfg)),
        ("status service", lambda: _status_service(cfg)),
        ("mqtt broker", lambda: network.check_brokers(cfg)),
        ("camera", lambda: hardware.check_camera(cfg, sim)),
        ("scanner", lambda: hardware.check_scanner(cfg, sim)),
        ("gpio", lambda: hardware.check_gpio(cfg, sim)),
    ]


#: The shipped simulation profile (in a checkout; an installed kiosk has none).
SIM_PROFILE = Path(__file__).resolve().parents[2] / "config" / "sim.toml"


def _status_service(cfg: Config) -> Check:
    """On the shipped simulation profile nothing listening is the simulated service not
    running: `kiosk sim` starts its own, `kiosk check` needs `kiosk status-service`."""
    from kiosk.doctor import network

    check = network.check_status_service(cfg)
    simulated = Path(cfg.path).resolve() == SIM_PROFILE and "refused" in check.detail
    if check.ok is False and simulated:
        return Check.warned(
            check.name,
            f"simulated: {check.detail}",
            "kiosk sim starts its own status service; for kiosk check start "
            "`kiosk status-service --token sim-token` first",
        )
    return check


def _commissioning(cfg: Config) -> list[Check]:
    """The same commissioning findings `kiosk config check` warns about: one row each, named
    by its section and key; FAIL for the unsafe ones."""
    from kiosk.config.commissioning import findings

    return [
        (Check.failed if f.unsafe else Check.warned)(f.where, f.message, f.fix)
        for f in findings(cfg)
    ]


def collect(cfg_path: str, *, sim: SimHardware | None = None) -> tuple[list[Check], int]:
    """Run every check; return them with the exit code (0, 1, or 2 for a configuration error)."""
    try:
        cfg = load_config(cfg_path)
    except ConfigError as exc:
        n = len(exc.problems)
        check = Check.failed(
            "configuration",
            f"{cfg_path}: {n} problem{'s' if n != 1 else ''}; nothing else was checked",
            f"correct the file, then run `kiosk config check {cfg_path}` or the doctor again",
            notes=exc.problems,  # the loader never echoes a secret value
        )
        return [check], EXIT_CONFIG
    checks = [
        Check.passed(
            "configuration",
            f"{cfg_path} (kiosk {cfg.kiosk.id}, venue {cfg.kiosk.venue_id}, "
            f"policy {cfg.policy.name})",
        )
    ]
    for name, run in _checks(cfg, sim or SimHardware()):
        try:
            found = run()
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            # One broken check must not hide the others from the technician.
            found = Check.failed(
                name,
                f"the doctor could not check this: {type(exc).__name__}: {exc}",
                "report this to the kiosk's maintainers with the output above",
            )
        checks.extend(found if isinstance(found, list) else [found])
    return checks, exit_code(checks)


def run_doctor(
    cfg_path: str,
    *,
    sim: SimHardware | None = None,
    out: TextIO | None = None,
    as_json: bool = False,
) -> int:
    """Check everything, print the table (or, with ``as_json``, a JSON list) to ``out``
    (standard output by default).

    ``sim`` gives the simulated far ends for ``sim:`` URLs and the ``mock`` pin factory, as
    for the daemon. Returns the exit code: 0 nothing failed, 1 something failed, 2 the
    configuration did not load.
    """
    out = sys.stdout if out is None else out  # looked up now: tests and callers redirect it
    checks, code = collect(cfg_path, sim=sim)
    if as_json:
        write_json(checks, out)
    else:
        write_table(checks, out)
        if code == EXIT_CONFIG:
            out.write("the other checks run once the configuration loads\n")
    out.flush()
    return code


def add_arguments(parser: argparse.ArgumentParser, *, default_config: str) -> None:
    """The options of ``kiosk doctor [--config FILE] [--json]``."""
    parser.add_argument("--config", default=default_config, help="configuration file")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead")


def cmd_doctor(args: argparse.Namespace) -> int:
    """`kiosk doctor`: check everything, print a table of OK/WARN/FAIL with what to do."""
    return run_doctor(args.config, as_json=args.json)
