"""The simulated population: generation, the JSON-lines file, lookups and live changes."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from simulators import population as pop
from simulators.iin import is_valid_iin
from simulators.population import (
    Person,
    Population,
    PopulationError,
    default_population_path,
    generate,
    is_valid_subject,
    load,
    save,
)


@pytest.fixture(scope="module")
def people() -> list[Person]:
    return generate(3000, seed=2021)


def test_generate_is_deterministic() -> None:
    assert generate(200, seed=5) == generate(200, seed=5)
    assert generate(200, seed=5) != generate(200, seed=6)


def test_generated_people_are_well_formed_and_unique(people: list[Person]) -> None:
    assert [p.index for p in people] == list(range(3000))
    assert len({p.sub for p in people}) == 3000
    for person in people:
        assert is_valid_subject(person.sub)
        assert person.st in pop.STATUSES
        assert person.name
        if person.iin is not None:
            assert is_valid_iin(person.iin)


def test_status_mix_is_realistic(people: list[Person]) -> None:
    counts = Counter(p.st for p in people)
    assert counts["green"] > 0.6 * len(people)
    for st in ("blue", "yellow", "red"):
        assert 0.03 * len(people) < counts[st] < 0.2 * len(people)


def test_about_fifteen_percent_are_passport_holders_from_many_countries(
    people: list[Person],
) -> None:
    passports = [p.sub for p in people if p.sub.startswith("passport:")]
    assert 0.12 * len(people) < len(passports) < 0.18 * len(people)
    countries = Counter(sub.split(":")[1] for sub in passports)
    assert len(countries) >= 8
    assert all(p.iin is None for p in people if p.sub.startswith("passport:"))


def test_shipped_file_is_the_documented_generation() -> None:
    shipped = default_population_path()
    assert shipped.name == "population.jsonl"
    expected = generate(3000, seed=2021)
    assert load(shipped).people == expected
    assert load().people == expected  # load() defaults to the shipped file


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    people = generate(50, seed=1)
    path = tmp_path / "people.jsonl"
    save(people, path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 50
    assert set(json.loads(lines[0])) == {"index", "sub", "st", "name"}
    assert load(path).people == people


def test_cli_writes_a_population(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "p.jsonl"
    assert pop.main(["--out", str(out), "--count", "20", "--seed", "3"]) == 0
    assert load(out).people == generate(20, seed=3)
    assert "wrote 20 people" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "Expecting value"),
        ("[1, 2]", "JSON object"),
        ('{"index": 1, "sub": "iin:921029350851", "st": "green"}', "missing field(s): name"),
        ('{"index": 1, "sub": "iin:921029350852", "st": "green", "name": "X"}', "valid subject"),
        ('{"index": 1, "sub": "passport:de:123", "st": "green", "name": "X"}', "valid subject"),
        ('{"index": 1, "sub": "iin:921029350851", "st": "purple", "name": "X"}', "status"),
        ('{"index": -1, "sub": "iin:921029350851", "st": "green", "name": "X"}', "index"),
    ],
)
def test_load_names_file_and_line_of_a_bad_record(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "bad.jsonl"
    good = '{"index": 0, "sub": "iin:061211600012", "st": "green", "name": "A B"}'
    path.write_text(f"{good}\n\n{line}\n", encoding="utf-8")
    with pytest.raises(PopulationError) as info:
        load(path)
    message = str(info.value)
    assert f"{path}:3:" in message
    assert problem in message
    assert "92102935085" not in message  # never quote a subject


def test_load_refuses_a_repeated_subject_or_index(tmp_path: Path) -> None:
    record = {"index": 0, "sub": "iin:061211600012", "st": "green", "name": "A B"}
    path = tmp_path / "dup.jsonl"
    path.write_text(json.dumps(record) + "\n" + json.dumps(record | {"index": 1}) + "\n")
    with pytest.raises(PopulationError, match="repeats the subject"):
        load(path)
    path.write_text(json.dumps(record) + "\n" + json.dumps(record | {"sub": "iin:921029350851"}))
    with pytest.raises(PopulationError, match="index 0 appears twice"):
        load(path)


def test_load_of_a_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(PopulationError, match="nowhere.jsonl"):
        load(tmp_path / "nowhere.jsonl")


def test_lookup_by_sub_and_index() -> None:
    population = Population(generate(30, seed=9))
    person = population.by_index(17)
    assert population.by_sub(person.sub) == person
    assert population.by_sub("iin:921029350851") is None
    with pytest.raises(KeyError):
        population.by_index(30)
    assert len(population) == 30
    assert [p.index for p in population] == list(range(30))


def test_pick_is_deterministic_and_honours_the_status() -> None:
    population = Population(generate(300, seed=9))
    for st in pop.STATUSES:
        first = population.pick(st, random.Random(4))
        assert first.st == st
        assert population.pick(st, random.Random(4)) == first
    picks = {population.pick("green", random.Random(seed)).index for seed in range(20)}
    assert len(picks) > 10


def test_pick_without_candidates_is_a_clear_error() -> None:
    population = Population([Person(0, "iin:921029350851", "green", "A B")])
    with pytest.raises(PopulationError, match="'red'"):
        population.pick("red", random.Random(0))
    with pytest.raises(PopulationError, match="status must be one of"):
        population.pick("purple", random.Random(0))


def test_set_status_changes_lookups_and_filters() -> None:
    population = Population(generate(40, seed=2))
    person = population.with_status("green")[0]
    changed = population.set_status(person.sub, "red")
    assert changed == Person(person.index, person.sub, "red", person.name)
    assert population.by_sub(person.sub) == changed
    assert population.by_index(person.index) == changed
    assert changed in population.with_status("red")
    assert changed not in population.with_status("green")
    with pytest.raises(KeyError):
        population.set_status("iin:921029350851", "red")
    with pytest.raises(PopulationError):
        population.set_status(person.sub, "black")


def test_subject_syntax() -> None:
    assert is_valid_subject("iin:921029350851")
    assert is_valid_subject("passport:DEU:C01X00T47")
    assert is_valid_subject("passport:KAZ:" + "9" * 20)
    for bad in (
        "iin:921029350852",
        "iin:92102935085",
        "921029350851",
        "passport:DEU:",
        "passport:DE:123",
        "passport:DEU:" + "9" * 21,
        "passport:DEU:c01",
        "iin:921029350851 ",
    ):
        assert not is_valid_subject(bad), bad
