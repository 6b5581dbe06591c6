"""Technician commands of the simulated world: ``status-service`` and ``mint``.

``register(subparsers)`` adds them to a parent argparse command (the kiosk CLI); each sets
``func``, which takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

from simulators import status_service
from simulators.issuer import (
    SIM_ISSUER,
    SIM_PASS_KEY,
    SIM_PASS_KID,
    IssuerError,
    PassIssuer,
    qr_png,
)
from simulators.population import STATUSES, Person, PopulationError, is_valid_subject, load

EXIT_USAGE = 2


def register(subparsers: Any) -> None:
    """Add ``status-service`` and ``mint`` to an ``ArgumentParser.add_subparsers()`` object."""
    service = subparsers.add_parser(
        "status-service",
        help="run the simulated status authority until Ctrl-C",
        description="Serve status-api.md over HTTP from a test population.",
    )
    status_service.add_arguments(service)
    service.set_defaults(func=run_status_service)

    mint = subparsers.add_parser(
        "mint",
        help="mint a signed test pass (TEST keys)",
        description=(
            "Mint a signed status pass for a test person and print it on stdout. "
            "With --person or --sub, --status sets the pass's status (default: the "
            "person's status); alone, --status picks a random person holding it."
        ),
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


def run_status_service(args: argparse.Namespace) -> int:
    """Serve in the foreground until Ctrl-C or SIGTERM."""
    return status_service.run_foreground(args)


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
        try:
            person = population.pick(args.status, random.Random(args.seed))
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
