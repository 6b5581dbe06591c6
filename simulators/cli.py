"""Commands of the simulated world: ``sim``, ``status-service``, ``status-responder``,
``mint``, ``sign-command`` and ``fleet``.

kiosk/cli.py lists them by name and, for the one being run only, imports this module and
calls ``add_arguments(name, parser)``; each sets ``func``, which takes the parsed arguments
and returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from simulators import fleet, mqtt_responder, status_service
from simulators.command_signer import (
    COMMANDS,
    MAX_VALID_S,
    RESULT_TIMEOUT_S,
    CommandError,
    is_valid_jti,
    publish_command,
    sign_command,
)
from simulators.issuer import (
    SIM_ISSUER,
    SIM_OPERATOR_KEY,
    SIM_OPERATOR_KID,
    SIM_PASS_KEY,
    SIM_PASS_KID,
    IssuerError,
    PassIssuer,
    qr_png,
)
from simulators.mqtt_client import DEFAULT_PREFIX, MqttSimError
from simulators.population import STATUSES, Person, PopulationError, is_valid_subject, load

EXIT_USAGE = 2
EXIT_FAILED = 1


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Add the arguments of simulator command ``name`` to ``parser`` and set its ``func``.

    kiosk/cli.py lists these commands and calls this only for the one being run, so that
    no production command imports the simulated world.
    """
    _ADDERS[name](parser)


def _add_sim(s: argparse.ArgumentParser) -> None:
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
    s.set_defaults(func=run_sim)


def _add_status_service(service: argparse.ArgumentParser) -> None:
    service.description = "Serve status-api.md over HTTP from a test population."
    status_service.add_arguments(service)
    service.set_defaults(func=run_status_service)


def _add_status_responder(responder: argparse.ArgumentParser) -> None:
    responder.description = (
        "Answer status-api.md requests over an MQTT broker from a test population."
    )
    mqtt_responder.add_arguments(responder)
    responder.set_defaults(func=run_status_responder)


def _add_mint(mint: argparse.ArgumentParser) -> None:
    mint.description = (
        "Mint a signed status pass for a test person and print it on stdout. "
        "With --person or --sub, --status sets the pass's status (default: the "
        "person's status); alone, --status picks a random person holding it."
    )
    who = mint.add_mutually_exclusive_group()
    who.add_argument("--person", type=int, metavar="INDEX", help="test person by index")
    who.add_argument("--sub", help="subject, iin:<12 digits> or passport:<AAA>:<number>")
    mint.add_argument("--status", choices=STATUSES, help="status (see above)")
    mint.add_argument("--population", type=Path, default=None, help="population JSONL")
    mint.add_argument("--seed", type=int, default=None, help="seed for picking a person")
    mint.add_argument("--valid-s", type=int, default=300, help="lifetime (spec: at most 600)")
    mint.add_argument("--iat", type=int, default=None, help="issued-at, epoch seconds")
    mint.add_argument("--nbf", type=int, default=None, help="not-before, epoch seconds")
    mint.add_argument("--jti", default=None, help="pass id (default: 12 random characters)")
    mint.add_argument("--key", type=Path, default=SIM_PASS_KEY, help="Ed25519 PEM key")
    mint.add_argument("--kid", default=SIM_PASS_KID, help="key id in the header")
    mint.add_argument("--iss", default=SIM_ISSUER, help="issuer claim")
    mint.add_argument("--png", type=Path, default=None, help="also write the code as QR PNG")
    mint.add_argument(
        "--bare", action="store_true", help="print the person's bare IIN instead of a pass"
    )
    mint.set_defaults(func=run_mint)


def _add_sign_command(sign: argparse.ArgumentParser) -> None:
    sign.description = (
        "Sign a remote command as mqtt.md says and print the JWS on stdout. With "
        "--publish, send it to a kiosk instead and print the kiosk's result; exit 1 if "
        "the result is ok false or does not come in time."
    )
    sign.add_argument("cmd", metavar="CMD", choices=COMMANDS, help=", ".join(COMMANDS))
    sign.add_argument(
        "--aud", required=True, metavar="KIOSK_ID|venue:VENUE", help="who may execute it"
    )
    sign.add_argument(
        "--valid-s", type=int, default=30, help=f"lifetime (spec: at most {MAX_VALID_S})"
    )
    sign.add_argument("--key", type=Path, default=SIM_OPERATOR_KEY, help="Ed25519 PEM key")
    sign.add_argument("--kid", default=SIM_OPERATOR_KID, help="key id in the header")
    sign.add_argument("--jti", default=None, help="command id (default: 12 random characters)")
    sign.add_argument("--iat", type=int, default=None, help="issued-at, epoch seconds")
    sign.add_argument("--publish", metavar="BROKER_URL", help="send it via this broker")
    sign.add_argument("--prefix", default=DEFAULT_PREFIX, help="topic prefix (with --publish)")
    sign.add_argument(
        "--kiosk", metavar="KIOSK_ID", help="kiosk to send to (default: --aud if a kiosk id)"
    )
    sign.add_argument(
        "--timeout-s", type=float, default=RESULT_TIMEOUT_S, help="wait this long for the result"
    )
    sign.set_defaults(func=run_sign_command)


def _add_fleet(fleet_parser: argparse.ArgumentParser) -> None:
    fleet_parser.description = (
        "Run simulated kiosks (the kiosk's own MQTT code, no camera) against one broker "
        "and one status responder; exit 1 if any event was lost."
    )
    fleet.add_arguments(fleet_parser)
    fleet_parser.set_defaults(func=fleet.run_command)


_ADDERS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "sim": _add_sim,
    "status-service": _add_status_service,
    "status-responder": _add_status_responder,
    "mint": _add_mint,
    "sign-command": _add_sign_command,
    "fleet": _add_fleet,
}

#: The simulator commands, in the order `kiosk --help` lists them.
NAMES = tuple(_ADDERS)


def run_sim(args: argparse.Namespace) -> int:
    """`kiosk sim`: the kiosk in a simulated world."""
    from simulators.run import run_sim as run

    return run(args)


def run_status_service(args: argparse.Namespace) -> int:
    """Serve in the foreground until Ctrl-C or SIGTERM."""
    return status_service.run_foreground(args)


def run_status_responder(args: argparse.Namespace) -> int:
    """Answer MQTT status requests in the foreground until Ctrl-C or SIGTERM."""
    return mqtt_responder.run_foreground(args)


def run_sign_command(args: argparse.Namespace) -> int:
    """Print a signed command, or with ``--publish`` send it and print the kiosk's result."""
    if args.jti is not None and not is_valid_jti(args.jti):
        print("error: --jti must be 8-64 characters of A-Z a-z 0-9 _ -", file=sys.stderr)
        return EXIT_USAGE
    kiosk_id = args.kiosk
    if args.publish is None and kiosk_id is not None:
        print("error: --kiosk only goes with --publish", file=sys.stderr)
        return EXIT_USAGE
    if args.publish is not None and kiosk_id is None:
        if args.aud.startswith("venue:"):
            print("error: --aud names a venue; say which kiosk with --kiosk", file=sys.stderr)
            return EXIT_USAGE
        kiosk_id = args.aud
    jti = args.jti or _new_jti()
    try:
        token = sign_command(
            args.cmd,
            aud=args.aud,
            key_path=args.key,
            kid=args.kid,
            valid_s=args.valid_s,
            jti=jti,
            iat=args.iat,
        )
    except (CommandError, IssuerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.publish is None:
        print(token)
        print(f"{args.cmd} for {args.aud}, jti {jti}, valid {args.valid_s} s", file=sys.stderr)
        return 0
    print(f"sending {args.cmd} (jti {jti}) to kiosk {kiosk_id}", file=sys.stderr)
    try:
        result = publish_command(
            token,
            jti=jti,
            broker_url=args.publish,
            kiosk_id=kiosk_id,
            prefix=args.prefix,
            timeout=args.timeout_s,
        )
    except MqttSimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if result is None:
        waited = f"{args.timeout_s:g} s"
        print(f"error: no result from kiosk {kiosk_id} within {waited}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(result, separators=(",", ":")))
    return 0 if result.get("ok") is True else EXIT_FAILED


def _new_jti() -> str:
    # Chosen here rather than inside sign_command: publish mode matches the result by it.
    return secrets.token_urlsafe(9)


def run_mint(args: argparse.Namespace) -> int:
    """Print a pass (or with ``--bare`` an IIN) on stdout and a masked description on stderr."""
    try:
        sub, st, index = _choose_subject(args)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    who = f"person {index} " if index is not None else ""
    if args.bare:
        if not sub.startswith("iin:"):
            print("error: --bare needs an IIN holder, not a passport", file=sys.stderr)
            return EXIT_USAGE
        text = sub[4:]
        description = f"bare IIN of {who}{mask_subject(sub)} ({st} at the authority)"
    else:
        try:
            issuer = PassIssuer.load(args.key, kid=args.kid, iss=args.iss)
        except IssuerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        text = issuer.mint(sub, st, iat=args.iat, valid_s=args.valid_s, nbf=args.nbf, jti=args.jti)
        description = (
            f"pass for {who}{mask_subject(sub)}: {st}, kid {args.kid}, valid {args.valid_s} s"
        )
    if args.png is not None:
        qr_png(text, args.png)
        description += f", QR written to {args.png}"
    print(text)
    print(description, file=sys.stderr)
    return 0


class _UsageError(Exception):
    pass


def _choose_subject(args: argparse.Namespace) -> tuple[str, str, int | None]:
    """(subject, status for the pass, person index or None) from the mint options."""
    if args.person is None and args.sub is None and args.status is None:
        raise _UsageError("name a test person: --person INDEX, --sub SUB or --status STATUS")
    if args.sub is not None and not is_valid_subject(args.sub):
        raise _UsageError("--sub is not a valid subject (iin:<IIN> or passport:<AAA>:<number>)")
    try:
        population = load(args.population)
    except PopulationError as exc:
        raise _UsageError(str(exc)) from None
    person: Person | None
    if args.person is not None:
        try:
            person = population.by_index(args.person)
        except KeyError:
            raise _UsageError(f"no test person with index {args.person}") from None
    elif args.sub is not None:
        person = population.by_sub(args.sub)
        if person is None:
            if args.status is None:
                raise _UsageError("that subject is not in the population; give --status too")
            return args.sub, args.status, None
    else:
        rng = random.Random(args.seed)
        if args.bare:
            # Only IIN holders have a bare code: a passport holder drawn here would fail.
            holders = [p for p in population.with_status(args.status) if p.iin is not None]
            if not holders:
                raise _UsageError(f"no IIN holder in the population has status {args.status!r}")
            person = rng.choice(holders)
        else:
            try:
                person = population.pick(args.status, rng)
            except PopulationError as exc:
                raise _UsageError(str(exc)) from None
    return person.sub, args.status or person.st, person.index


def mask_subject(sub: str) -> str:
    """A subject fit for a screen or a log: only the last four characters of the number."""
    kind, _, rest = sub.partition(":")
    if kind == "passport":
        country, _, number = rest.partition(":")
        return f"passport:{country}:{_mask(number)}"
    return f"{kind}:{_mask(rest)}"


def _mask(number: str) -> str:
    shown = 4 if len(number) > 6 else 0  # short numbers would be revealed by their tail
    return "*" * (len(number) - shown) + number[len(number) - shown :]
