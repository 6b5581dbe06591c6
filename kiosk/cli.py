"""The `kiosk` command.

Two groups of subcommands share it. The production commands (`PRODUCTION_COMMANDS`: the
daemon, the relay release, the one-shot tools) are what a kiosk runs; the simulated world's
(`SIMULATOR_COMMANDS`) are for development and commissioning. Every command is listed by
name and help alone; only the command being run imports its modules and adds its arguments,
so `kiosk release` (the unit's ``ExecStopPost``) loads the configuration and the relay
driver and nothing else, and no production command imports a simulator module: a broken
simulator cannot break the relay release.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from kiosk import __version__
from kiosk.errors import ConfigError, KioskError
from kiosk.logs import setup_logging

DEFAULT_CONFIG = "/etc/ashyq-kiosk/kiosk.toml"
EX_USAGE = 2
EX_CONFIG = 78  # sysexits.h EX_CONFIG: systemd's RestartPreventExitStatus keeps it down


def _default_config() -> str:
    return os.environ.get("KIOSK_CONFIG", DEFAULT_CONFIG)


# -- the production commands ---------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    """`kiosk check`: decide one code without moving or recording anything."""
    from kiosk.clock import Clock, FixedWallClock, SystemClock, parse_time
    from kiosk.clockguard import HWM_FILE, ClockGuard
    from kiosk.config import load_config
    from kiosk.core import build_core
    from kiosk.reasons import Decision, Reason

    text = sys.stdin.buffer.read() if args.text == "-" else os.fsencode(args.text)
    cfg = load_config(args.config)
    clock: Clock = SystemClock()
    if args.at is not None:
        try:
            clock = FixedWallClock(parse_time(args.at))
        except ValueError as exc:
            print(f"kiosk check: --at: {exc}", file=sys.stderr)
            return EX_USAGE
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
    from kiosk.config import load_config
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
    from kiosk.config import load_config
    from kiosk.daemon import Daemon

    cfg = load_config(args.config)
    setup_logging(cfg.kiosk.log_level, stream=sys.stdout)
    daemon = Daemon(cfg)
    daemon.install_signal_handlers()
    daemon.run()
    return 0


def _add_check(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=_default_config(), help="configuration file")
    p.add_argument("--at", help="judge at this time (RFC 3339 or epoch seconds)")
    p.add_argument("text", metavar="TEXT", help="the code's text, or - for standard input")
    p.set_defaults(func=cmd_check)


def _add_decode(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--decoder", choices=("zxing", "pyzbar"), default="zxing")
    p.set_defaults(func=cmd_decode)


def _add_config(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    cc = actions.add_parser("check", help="validate a configuration file")
    cc.add_argument("file", metavar="FILE")
    cc.add_argument("--show", action="store_true", help="print it, secrets masked")
    cc.set_defaults(func=cmd_config_check)


def _add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=_default_config(), help="configuration file")
    p.set_defaults(func=cmd_run)


def _add_release(p: argparse.ArgumentParser) -> None:
    from kiosk.release import add_arguments

    add_arguments(p, default_config=_default_config())


def _add_doctor(p: argparse.ArgumentParser) -> None:
    from kiosk.doctor import add_arguments, cmd_doctor

    add_arguments(p, default_config=_default_config())
    p.set_defaults(func=cmd_doctor)


def _add_passwd(p: argparse.ArgumentParser) -> None:
    from kiosk.web.passwd import add_arguments

    add_arguments(p, default_config=_default_config())


def _add_report(p: argparse.ArgumentParser) -> None:
    from kiosk.report import add_arguments, cmd_report

    add_arguments(p, default_config=_default_config())
    p.set_defaults(func=cmd_report)


# -- the registry --------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One subcommand of `kiosk`.

    ``add`` imports what the command needs, adds its arguments and sets ``func`` (which
    takes the parsed arguments and returns the exit status); it is called only when this
    command is the one being run, or its help is asked for. ``quiet`` commands log warnings
    only: a one-shot tool's output is its answer.
    """

    name: str
    help: str
    add: Callable[[argparse.ArgumentParser], None]
    quiet: bool = False


PRODUCTION_COMMANDS: tuple[Command, ...] = (
    Command("check", "decide one code as if presented now (moves nothing)", _add_check, True),
    Command("decode", "decode the QR codes in image files", _add_decode, True),
    Command("config", "configuration tools", _add_config, True),
    Command("run", "run the kiosk daemon", _add_run),
    Command("release", "release the turnstile relay and exit (ExecStopPost)", _add_release, True),
    Command("doctor", "check everything at the gate and say what to fix", _add_doctor, True),
    Command("report", "what happened at the gate: counts, reasons, hours", _add_report),
    Command("passwd", "add a console account or change its password", _add_passwd, True),
    # Further production commands register here, each importing its own module from its
    # `add` function only.
)


def _simulator(name: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(p: argparse.ArgumentParser) -> None:
        from simulators.cli import add_arguments

        add_arguments(name, p)

    return add


#: The simulated world's commands: simulators.cli defines their arguments and runs them.
SIMULATOR_COMMANDS: tuple[Command, ...] = (
    Command("sim", "run the kiosk in a simulated world", _simulator("sim")),
    Command(
        "status-service",
        "run the simulated status authority until Ctrl-C",
        _simulator("status-service"),
    ),
    Command(
        "status-responder",
        "answer status requests over MQTT 5 until Ctrl-C",
        _simulator("status-responder"),
    ),
    Command("mint", "mint a signed test pass (TEST keys)", _simulator("mint"), True),
    Command(
        "sign-command",
        "sign a remote command (TEST operator key), print or send it",
        _simulator("sign-command"),
        True,
    ),
    Command(
        "fleet",
        "simulate many kiosks on one broker and report throughput, latency and loss",
        _simulator("fleet"),
    ),
)

COMMANDS: dict[str, Command] = {c.name: c for c in PRODUCTION_COMMANDS + SIMULATOR_COMMANDS}


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser: every subcommand listed, the arguments of ``commands`` added.

    By default every command's arguments are added (which imports every command's modules,
    the simulators' included); `main` adds only the command being run.
    """
    p = argparse.ArgumentParser(prog="kiosk", description="Ashyq entrance kiosk controller")
    p.add_argument("--version", action="version", version=f"kiosk {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        parser = sub.add_parser(command.name, help=command.help)
        if commands is None or command.name in commands:
            command.add(parser)
    return p


def command_name(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``: its first word that is not an option.

    The top-level parser has options without values only (``--help``, ``--version``), so
    the first other word is where argparse looks for the command too.
    """
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kiosk` command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    name = command_name(argv)
    args = build_parser(() if name is None else (name,)).parse_args(argv)
    setup_logging("warning" if COMMANDS[args.command].quiet else "info")
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
