"""constraints.txt against pyproject.toml: every runtime dependency pinned, exactly once,
to a version its requirement accepts (the installer installs with these pins)."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from support import REPO


def pins() -> dict[str, Version]:
    out: dict[str, Version] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"not an exact pin: {line!r}"
        key = canonicalize_name(name)
        assert key not in out, f"pinned twice: {name}"
        out[key] = Version(version)
    return out


def test_every_runtime_dependency_is_pinned_to_a_version_it_accepts():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pinned = pins()
    for text in project["dependencies"]:
        requirement = Requirement(text)
        key = canonicalize_name(requirement.name)
        assert key in pinned, f"{requirement.name} is not in constraints.txt: run scripts/lock.sh"
        assert requirement.specifier.contains(pinned[key], prereleases=True), (
            f"constraints.txt pins {requirement.name}=={pinned[key]}, pyproject.toml wants "
            f"{requirement.specifier}: run scripts/lock.sh"
        )


def test_the_kiosk_itself_and_pip_are_not_pinned():
    # The kiosk's version is the release's; pip is the installer's tool, not a dependency.
    assert {"ashyq-kiosk", "pip"}.isdisjoint(pins())
