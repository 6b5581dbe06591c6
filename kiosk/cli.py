"""The `kiosk` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

from kiosk import __version__
from kiosk.clock import Clock, FixedWallClock, SystemClock, parse_time
from kiosk.config import load_config
from kiosk.errors import ConfigError, KioskError
from kiosk.logs import setup_logging
from kiosk.reasons import Decision, Reason

DEFAULT_CONFIG = "/etc/ashyq-kiosk/kiosk.toml"
EX_USAGE = 2
EX_CONFIG = 78  # sysexits.h EX_CONFIG: systemd's RestartPreventExitStatus keeps it down


def _default_config() -> str:
    return os.environ.get("KIOSK_CONFIG", DEFAULT_CONFIG)


def cmd_check(args: argparse.Namespace) -> int:
    """`kiosk check`: decide one code without moving or recording anything."""
    from kiosk.core import build_core

    text = sys.stdin.buffer.read() if args.text == "-" else os.fsencode(args.text)
    cfg = load_config(args.config)
    clock: Clock = SystemClock()
    if args.at is not None:
        try:
            clock = FixedWallClock(parse_time(args.at))
        except ValueError as exc:
            print(f"kiosk check: --at: {exc}", file=sys.stderr)
            return EX_USAGE
    from kiosk.clockguard import HWM_FILE, ClockGuard

    guard: ClockGuard | None = None
    if args.at is None:
        hwm = cfg.state_dir / HWM_FILE
        guard = ClockGuard(hwm if hwm.exists() else None, clock=clock, leeway_s=cfg.kiosk.leeway_s)
    # --at gives the time, so it is trusted: this machine's NTP state has no say in it.
    trusted = guard.trusted if guard is not None else (lambda: True)
    core = build_core(cfg, clock=clock, persistent=False, clock_trusted=trusted)
    try:
        t0 = time.perf_counter()
        checked = core.checker.check(text, policy=cfg.policy)
        latency_ms = (time.perf_counter() - t0) * 1000
    finally:
        core.close()
    v = checked.verdict
    out = {
        "decision": v.decision.value,
        "reason": v.reason.value,
        "st": v.st,
        "via": v.via.value,
        "subject": v.subject,
        "holder": checked.masked,
        "latency_ms": round(latency_ms, 2),
    }
    if v.reason is Reason.CLOCK_UNTRUSTED and guard is not None:
        out["clock"] = guard.problem() or "untrusted"
    if v.passback:
        out["anti_passback"] = True
    print(json.dumps(out))
    return 0 if v.decision is Decision.ADMIT else 1


def cmd_decode(args: argparse.Namespace) -> int:
    """`kiosk decode`: the camera path's decoder on image files."""
    from drivers.decode_cli import decode_files

    return decode_files(args.images, args.decoder)


def cmd_config_check(args: argparse.Namespace) -> int:
    """`kiosk config check`: validate a file; print it with secrets masked on request.

    Commissioning mistakes (kiosk.config.commissioning) are printed as warnings on standard
    error; they do not change the exit status, which says whether the file loads."""
    from kiosk.config.commissioning import findings
    from kiosk.config.show import shown

    cfg = load_config(args.file)
    if args.show:
        print(json.dumps(shown(cfg), indent=2, default=str))
    for finding in findings(cfg):
        label = "unsafe" if finding.unsafe else "warning"
        print(f"{label}: {finding.path}: {finding.where}: {finding.message}", file=sys.stderr)
        print(f"  fix: {finding.fix}", file=sys.stderr)
    print(
        f"{args.file}: OK (kiosk {cfg.kiosk.id}, venue {cfg.kiosk.venue_id}, "
        f"policy {cfg.policy.name})",
        file=sys.stderr,
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """`kiosk run`: the daemon (logs to standard output, for the journal)."""
    from kiosk.daemon import Daemon

    cfg = load_config(args.config)
    setup_logging(cfg.kiosk.log_level, stream=sys.stdout)
    daemon = Daemon(cfg)
    daemon.install_signal_handlers()
    daemon.run()
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    """`kiosk sim`: the kiosk in a simulated world."""
    from simulators.run import run_sim

    return run_sim(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(prog="kiosk", description="Ashyq entrance kiosk controller")
    p.add_argument("--version", action="version", version=f"kiosk {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("check", help="decide one code as if presented now (moves nothing)")
    c.add_argument("--config", default=_default_config(), help="configuration file")
    c.add_argument("--at", help="judge at this time (RFC 3339 or epoch seconds)")
    c.add_argument("text", metavar="TEXT", help="the code's text, or - for standard input")
    c.set_defaults(func=cmd_check)

    d = sub.add_parser("decode", help="decode the QR codes in image files")
    d.add_argument("images", nargs="+", metavar="IMAGE")
    d.add_argument("--decoder", choices=("zxing", "pyzbar"), default="zxing")
    d.set_defaults(func=cmd_decode)

    cfg = sub.add_parser("config", help="configuration tools")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    cc = cfg_sub.add_parser("check", help="validate a configuration file")
    cc.add_argument("file", metavar="FILE")
    cc.add_argument("--show", action="store_true", help="print it, secrets masked")
    cc.set_defaults(func=cmd_config_check)

    r = sub.add_parser("run", help="run the kiosk daemon")
    r.add_argument("--config", default=_default_config(), help="configuration file")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("sim", help="run the kiosk in a simulated world")
    s.add_argument("--config", default=None, help="configuration (default: the simulation one)")
    s.add_argument("--scenario", default=None, help="scenario file (TOML)")
    s.add_argument(
        "--count", type=int, default=None, help="stop after this many people (or scenario steps)"
    )
    s.add_argument("--rate", type=float, default=0.5, help="people per second (no scenario)")
    s.add_argument("--speed", type=float, default=None, help="time scale (2 = twice as fast)")
    s.add_argument("--seed", type=int, default=1, help="random seed of the crowd")
    s.add_argument(
        "--stay-s",
        type=float,
        default=60.0,
        # With the default crowd (0.5 a second, most admitted) about 20 people are inside.
        help="mean seconds a person stays inside before leaving by the exit (no scenario)",
    )
    s.add_argument(
        "--state-dir", default=None, help="keep the kiosk's state here (default: temporary)"
    )
    s.add_argument(
        "--allow-remote-broker",
        action="store_true",
        help="use an MQTT broker that is not on loopback (topics still under sim/)",
    )
    s.add_argument(
        "--web",
        nargs="?",
        const="127.0.0.1:8088",
        metavar="HOST:PORT",
        help="also serve the display and the console (default 127.0.0.1:8088; port 0: any)",
    )
    out = s.add_mutually_exclusive_group()
    out.add_argument(
        "--pretty",
        dest="output",
        action="store_const",
        const="pretty",
        help="one readable line per decision (the default on a terminal)",
    )
    out.add_argument(
        "--json",
        dest="output",
        action="store_const",
        const="json",
        help="one JSON line per recorded event (the default otherwise)",
    )
    s.set_defaults(func=cmd_sim)

    from kiosk.doctor import add_arguments as add_doctor_arguments
    from kiosk.doctor import cmd_doctor
    from kiosk.release import add_parser as add_release

    add_release(sub, _default_config())
    doc = sub.add_parser("doctor", help="check everything at the gate and say what to fix")
    add_doctor_arguments(doc, default_config=_default_config())
    doc.set_defaults(func=cmd_doctor)

    from kiosk.report import add_arguments as add_report_arguments
    from kiosk.report import cmd_report

    rep = sub.add_parser("report", help="what happened at the gate: counts, reasons, hours")
    add_report_arguments(rep, default_config=_default_config())
    rep.set_defaults(func=cmd_report)

    pw = sub.add_parser("passwd", help="add a console account or change its password")
    from kiosk.web.passwd import add_arguments as add_passwd_arguments

    add_passwd_arguments(pw, default_config=_default_config())

    from simulators.cli import register

    register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kiosk` command."""
    args = build_parser().parse_args(argv)
    quiet = ("check", "decode", "config", "doctor", "release", "mint", "sign-command")
    setup_logging("warning" if args.command in quiet else "info")
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        # `kiosk doctor | head -1`: the reader left. Python's "Note on SIGPIPE": point
        # stdout at /dev/null so the flush at exit cannot fail again, and exit 1.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except ConfigError as exc:
        for line in exc.problems:
            print(f"config error: {line}", file=sys.stderr)
        return EX_CONFIG if args.command == "run" else EX_USAGE
    except KioskError as exc:
        print(f"kiosk {args.command}: {exc}", file=sys.stderr)
        # The daemon exits 1 so systemd restarts it (a camera may come back); tools exit 2.
        return 1 if args.command in ("run", "sim") else EX_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
