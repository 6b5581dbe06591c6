"""Test people of the simulated world: who they are (a subject) and what status they hold.

A population is stored as JSON lines, one person per line::

    {"index": 0, "sub": "iin:921029350851", "st": "green", "name": "Aigerim Omarova"}

Every person is invented; the IINs are well-formed but drawn at random. The shipped file
``data/population.jsonl`` is ``generate(3000, seed=2021)`` and can be rebuilt with
``python -m simulators.population --out simulators/data/population.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from kiosk.errors import KioskError
from simulators.iin import is_female, is_valid_iin, make_iin

STATUSES = ("green", "blue", "yellow", "red")
# Mostly people who may enter, so that a simulated queue looks like a real one.
STATUS_WEIGHTS = (0.72, 0.10, 0.10, 0.08)
PASSPORT_SHARE = 0.15
# Century digit 0 is rare but real (credentials.md), so a few IINs carry it.
FOREIGN_RESIDENT_SHARE = 0.01

DEFAULT_COUNT = 3000
DEFAULT_SEED = 2021

_SUBJECT_RE = re.compile(r"iin:([0-9]{12})|passport:([A-Z]{3}):([A-Z0-9]{1,20})")


class PopulationError(KioskError):
    """A population file or a change to a population is wrong."""


@dataclass(frozen=True, slots=True)
class Person:
    """One test person: a stable index, a subject, a status and an invented name."""

    index: int
    sub: str
    st: str
    name: str

    @property
    def iin(self) -> str | None:
        """The bare 12-digit IIN, or None for a passport holder."""
        return self.sub[4:] if self.sub.startswith("iin:") else None


def is_valid_subject(sub: str) -> bool:
    """True for ``iin:<valid IIN>`` or ``passport:<AAA>:<number>`` (credentials.md)."""
    match = _SUBJECT_RE.fullmatch(sub)
    if match is None:
        return False
    iin = match.group(1)
    return iin is None or is_valid_iin(iin)


def default_population_path() -> Path:
    """The shipped population file (3000 people, seed 2021)."""
    return Path(__file__).resolve().parent / "data" / "population.jsonl"


class Population:
    """A thread-safe set of people, looked up by subject or index, filtered by status.

    Statuses may change while a simulated service runs, so every read takes the lock and
    ``set_status`` replaces the (immutable) person.
    """

    def __init__(self, people: Iterable[Person]) -> None:
        self._lock = threading.Lock()
        self._by_index: dict[int, Person] = {}
        self._by_sub: dict[str, Person] = {}
        for person in people:
            _check_person(person)
            if person.index in self._by_index:
                raise PopulationError(f"index {person.index} appears twice")
            if person.sub in self._by_sub:
                raise PopulationError(f"person {person.index} repeats the subject of another")
            self._by_index[person.index] = person
            self._by_sub[person.sub] = person

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_index)

    def __iter__(self) -> Iterator[Person]:
        return iter(self.people)

    @property
    def people(self) -> list[Person]:
        """Everyone, in index order (a snapshot)."""
        with self._lock:
            return sorted(self._by_index.values(), key=lambda p: p.index)

    def by_sub(self, sub: str) -> Person | None:
        """The person with this subject, or None."""
        with self._lock:
            return self._by_sub.get(sub)

    def by_index(self, index: int) -> Person:
        """The person with this index; ``KeyError`` when there is none."""
        with self._lock:
            return self._by_index[index]

    def with_status(self, st: str) -> list[Person]:
        """Everyone holding status ``st``, in index order."""
        _check_status(st)
        return [p for p in self.people if p.st == st]

    def pick(self, st: str, rng: random.Random) -> Person:
        """A person with status ``st`` chosen by ``rng`` (deterministic for a seeded rng)."""
        candidates = self.with_status(st)
        if not candidates:
            raise PopulationError(f"nobody in the population has status {st!r}")
        return rng.choice(candidates)

    def set_status(self, sub: str, st: str) -> Person:
        """Change a person's status (as the authority would) and return the new person."""
        _check_status(st)
        with self._lock:
            old = self._by_sub.get(sub)
            if old is None:
                raise KeyError("unknown subject")
            new = replace(old, st=st)
            self._by_sub[sub] = new
            self._by_index[new.index] = new
            return new


def generate(n: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> list[Person]:
    """``n`` invented people with a realistic status mix; the same seed gives the same list."""
    rng = random.Random(seed)
    people: list[Person] = []
    seen: set[str] = set()
    while len(people) < n:
        if rng.random() < PASSPORT_SHARE:
            sub, name = _make_passport_holder(rng)
        else:
            sub, name = _make_resident(rng)
        if sub in seen:  # vanishingly rare, but a subject must name one person
            continue
        seen.add(sub)
        st = rng.choices(STATUSES, weights=STATUS_WEIGHTS)[0]
        people.append(Person(index=len(people), sub=sub, st=st, name=name))
    return people


def save(people: Iterable[Person], path: str | Path) -> None:
    """Write people as JSON lines (UTF-8, one object per line, in the given order)."""
    lines = [
        json.dumps({"index": p.index, "sub": p.sub, "st": p.st, "name": p.name}, ensure_ascii=False)
        for p in people
    ]
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def load(path: str | Path | None = None) -> Population:
    """Read a JSON-lines population (default: the shipped one); errors name file and line."""
    path = Path(path) if path is not None else default_population_path()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PopulationError(f"{path}: cannot read population file: {exc}") from exc
    people: list[Person] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            people.append(_parse_line(line))
        except (ValueError, PopulationError) as exc:
            raise PopulationError(f"{path}:{lineno}: {exc}") from None
    try:
        return Population(people)
    except PopulationError as exc:
        raise PopulationError(f"{path}: {exc}") from None


def _parse_line(line: str) -> Person:
    record = json.loads(line)
    if not isinstance(record, dict):
        raise PopulationError("a line must be a JSON object")
    missing = [k for k in ("index", "sub", "st", "name") if k not in record]
    if missing:
        raise PopulationError(f"missing field(s): {', '.join(missing)}")
    person = Person(index=record["index"], sub=record["sub"], st=record["st"], name=record["name"])
    _check_person(person)
    return person


def _check_person(person: Person) -> None:
    # Messages never quote the subject: population files hold (invented) personal data.
    if not isinstance(person.index, int) or isinstance(person.index, bool) or person.index < 0:
        raise PopulationError("index must be a non-negative integer")
    if not isinstance(person.sub, str) or not is_valid_subject(person.sub):
        raise PopulationError(f"person {person.index}: sub is not a valid subject")
    if not isinstance(person.name, str):
        raise PopulationError(f"person {person.index}: name must be a string")
    _check_status(person.st)


def _check_status(st: object) -> None:
    if st not in STATUSES:
        raise PopulationError(f"status must be one of {', '.join(STATUSES)}, not {st!r}")


# --- invented names and documents -------------------------------------------------------

_KZ_MALE = ("Aidos", "Alibek", "Arman", "Askar", "Azamat", "Bauyrzhan", "Daniyar", "Dauren",
            "Marat", "Nurlan", "Nursultan", "Serik", "Timur", "Yerlan", "Yerzhan", "Ivan",
            "Sergey", "Andrey")  # fmt: skip
_KZ_FEMALE = ("Aigerim", "Ainur", "Aliya", "Aruzhan", "Assel", "Dana", "Dinara", "Gulnara",
              "Kamila", "Madina", "Meruyert", "Saule", "Togzhan", "Zarina", "Zhanna", "Olga",
              "Tatyana", "Yelena")  # fmt: skip
# Male forms; the female form adds "a" (Omarov -> Omarova), as in Kazakh and Russian usage.
_KZ_SURNAMES = ("Abenov", "Akhmetov", "Bekov", "Ibraimov", "Iskakov", "Kassymov", "Mukanov",
                "Nurlanov", "Omarov", "Ospanov", "Sadykov", "Suleimenov", "Tulegenov",
                "Zhaksylykov", "Petrov", "Smirnov", "Kim")  # fmt: skip
_UNGENDERED_SURNAMES = {"Kim"}


@dataclass(frozen=True)
class _Country:
    weight: int  # relative share among passport holders
    males: str
    females: str
    surnames: str
    gendered: bool  # female surnames take an "a"
    # "9" is a digit, "A" a letter, "X" a letter or digit, anything else literal.
    number_format: str


_COUNTRIES = {
    "RUS": _Country(22, "Dmitry Sergey Alexey", "Ekaterina Natalia Irina",
                    "Ivanov Kuznetsov Popov", True, "999999999"),
    "UZB": _Country(16, "Jasur Sardor Bekzod", "Dilnoza Nodira Malika",
                    "Karimov Rakhimov Yusupov", True, "FA9999999"),
    "KGZ": _Country(12, "Bakyt Nurbek Azamat", "Aizada Cholpon Begimai",
                    "Asanov Toktogulov Usenov", True, "AC9999999"),
    "CHN": _Country(10, "Wei Jun Hao", "Na Xiuying Fang", "Wang Zhang Liu Chen", False,
                    "E99999999"),
    "TUR": _Country(8, "Emre Mehmet Can", "Elif Zeynep Ayse", "Yilmaz Kaya Demir Sahin", False,
                    "U99999999"),
    "KAZ": _Country(8, "Yerlan Daniyar Arman", "Aigerim Dana Madina", "Omarov Kassymov Bekov",
                    True, "N99999999"),
    "DEU": _Country(6, "Lukas Jonas Felix", "Anna Lea Marie", "Mueller Schmidt Fischer Weber",
                    False, "CXXXXXXXX"),
    "KOR": _Country(5, "Minjun Jiho Seojun", "Seoyeon Haeun Jiwoo", "Kim Lee Park Choi", False,
                    "M99999999"),
    "USA": _Country(5, "James Michael David", "Emily Sarah Olivia", "Smith Johnson Brown",
                    False, "999999999"),
    "GBR": _Country(4, "Oliver Harry George", "Amelia Emily Isla", "Taylor Jones Evans", False,
                    "999999999"),
    "IND": _Country(4, "Arjun Rahul Vikram", "Priya Ananya Kavya", "Sharma Patel Singh Gupta",
                    False, "A9999999"),
}  # fmt: skip
_COUNTRY_CODES = tuple(_COUNTRIES)
_COUNTRY_WEIGHTS = tuple(c.weight for c in _COUNTRIES.values())
# German passport numbers avoid letters that read like digits.
_ALNUM = "CFGHJKLMNPRTVWXYZ0123456789"


def _surname(surname: str, female: bool, gendered: bool) -> str:
    if female and gendered and surname not in _UNGENDERED_SURNAMES:
        return surname + "a"
    return surname


def _make_resident(rng: random.Random) -> tuple[str, str]:
    iin = make_iin(rng, foreign_resident=rng.random() < FOREIGN_RESIDENT_SHARE)
    female = is_female(iin)
    if female is None:
        female = rng.random() < 0.5
    first = rng.choice(_KZ_FEMALE if female else _KZ_MALE)
    last = _surname(rng.choice(_KZ_SURNAMES), female, gendered=True)
    return f"iin:{iin}", f"{first} {last}"


def _make_passport_holder(rng: random.Random) -> tuple[str, str]:
    country = rng.choices(_COUNTRY_CODES, weights=_COUNTRY_WEIGHTS)[0]
    spec = _COUNTRIES[country]
    female = rng.random() < 0.5
    first = rng.choice((spec.females if female else spec.males).split())
    last = _surname(rng.choice(spec.surnames.split()), female, spec.gendered)
    number = "".join(_format_char(rng, c) for c in spec.number_format)
    return f"passport:{country}:{number}", f"{first} {last}"


def _format_char(rng: random.Random, c: str) -> str:
    if c == "9":
        return str(rng.randrange(10))
    if c == "A":
        return chr(ord("A") + rng.randrange(26))
    if c == "X":
        return rng.choice(_ALNUM)
    return c


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simulators.population --out FILE --count N --seed S``."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.population", description="Write an invented test population."
    )
    parser.add_argument("--out", type=Path, default=default_population_path(), help="JSONL file")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="number of people")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    args = parser.parse_args(argv)
    if args.count < 0:
        parser.error("--count must not be negative")
    people = generate(args.count, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save(people, args.out)
    counts = {st: sum(p.st == st for p in people) for st in STATUSES}
    passports = sum(p.sub.startswith("passport:") for p in people)
    summary = ", ".join(f"{st} {n}" for st, n in counts.items())
    print(f"wrote {len(people)} people to {args.out} ({summary}; {passports} passports)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
