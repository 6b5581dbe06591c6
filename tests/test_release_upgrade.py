"""Install, upgrade and roll back, as an IT department does it, into a scratch root.

Two releases of this checkout are made in a scratch repository: v0.1.0, then one commit
later v0.2.0, each as an offline wheelhouse (scripts/wheelhouse.sh, the kiosk's wheel and
every pinned dependency). The installer then runs for real: installs 0.1.0, the integrator
edits the configuration and adds the secrets, 0.2.0 is installed over it, rolled back,
installed again, rolled back and forward. Each step: which release `kiosk --version` of
/opt/ashyq-kiosk/venv (the unit's path) says, which ones are kept, and the configuration
byte for byte as the integrator left it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from release_support import build_wheel, commit, git, snapshot

from support import REPO, SIM_KEYS

NAME = "ashyq-kiosk"
LINKS = ("current", "previous")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the installer creates root-owned files"),
    pytest.mark.skipif(
        shutil.which("systemd-tmpfiles") is None or shutil.which("systemd-sysusers") is None,
        reason="needs systemd's sysusers and tmpfiles tools",
    ),
    pytest.mark.skipif(
        not Path("/usr/bin/python3").exists(), reason="the installer uses Debian's Python"
    ),
]


def run(checkout: Path, root: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    """``checkout``'s scripts/install.sh into ``root`` with ``args``."""
    done = subprocess.run(
        ["bash", str(checkout / "scripts" / "install.sh"), "--root", str(root), "--no-apt", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (done.returncode == 0) == ok, done.stdout + done.stderr
    return done


def tree(top: Path) -> dict[str, tuple]:
    """Every path under ``top`` (and ``top``): type and mode, owner, link target or digest."""
    out: dict[str, tuple] = {}
    for path in [top, *sorted(top.rglob("*"))]:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            what = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            what = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            what = None
        out[str(path.relative_to(top))] = (stat.filemode(st.st_mode), st.st_uid, st.st_gid, what)
    return out


def pins(text: str) -> set[str]:
    return {line for line in text.splitlines() if "==" in line and not line.startswith("#")}


def look(root: Path) -> dict:
    """What is installed: the version the unit's path runs, the links, the releases kept."""
    opt = root / "opt" / NAME
    version = subprocess.run(
        [str(opt / "venv" / "bin" / "kiosk"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    link = {n: os.readlink(opt / n) if (opt / n).is_symlink() else None for n in LINKS}
    return {
        "version": version,
        **link,
        "releases": sorted(p.name for p in (opt / "releases").iterdir()),
        "installed": (opt / link["current"] / "installed.txt").read_text(),
        "etc": tree(root / "etc" / NAME),
    }


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("release")
    repo = snapshot(base / "repo")
    git(repo, "tag", "v0.1.0")
    checkout_a = base / "checkout-0.1.0"
    git(base, "clone", "-q", str(repo), str(checkout_a))
    wheels_a = base / "wheels-0.1.0"
    subprocess.run(
        ["bash", str(checkout_a / "scripts" / "wheelhouse.sh"), str(wheels_a)],
        capture_output=True,
        check=True,
        timeout=600,
        env={**os.environ, "PYTHON": sys.executable},  # a pip at hand: no throwaway venv
    )
    commit(repo, "RELEASE-NOTE", "0.2.0: the next release\n", "The next release")
    git(repo, "tag", "v0.2.0")
    # 0.2.0 pins the same dependencies: its wheelhouse shares 0.1.0's wheels (hard links).
    wheels_b = base / "wheels-0.2.0"
    wheels_b.mkdir()
    for wheel in wheels_a.glob("*.whl"):
        if not wheel.name.startswith("ashyq_kiosk-"):
            os.link(wheel, wheels_b / wheel.name)
    build_wheel(repo, wheels_b)

    root = base / "root"
    # A gate installed before releases: one venv directory in place.
    (root / "opt" / NAME / "venv" / "bin").mkdir(parents=True)
    (root / "opt" / NAME / "venv" / "bin" / "kiosk").write_text("#!/bin/sh\necho kiosk 0.0.1\n")
    steps: dict = {"wheels": sorted(p.name for p in wheels_a.glob("*.whl"))}
    steps["install_a"] = run(checkout_a, root, "--wheelhouse", str(wheels_a)).stdout
    steps["a"] = look(root)
    steps["rollback_alone"] = run(checkout_a, root, "--rollback", ok=False).stderr

    # The integrator's work, which no step below may touch.
    etc = root / "etc" / NAME
    gid = (etc / "kiosk.toml").stat().st_gid
    toml = (etc / "kiosk.toml").read_text().replace("CHANGE-ME-kiosk-01", "gym-almaty-07")
    (etc / "kiosk.toml").write_text(toml)
    for name, content in (
        ("status-token", b"token-from-the-integrator\n"),
        ("passes.jwks.json", (SIM_KEYS / "passes.jwks.json").read_bytes()),
    ):
        (etc / name).write_bytes(content)
        os.chown(etc / name, 0, gid)
        (etc / name).chmod(0o640)
    steps["etc"] = tree(etc)
    # A release older than the two kept ones, left by an earlier upgrade.
    (root / "opt" / NAME / "releases" / "0.0.9" / "venv").mkdir(parents=True)

    # 0.2.0 from a checkout whose pins miss a dependency: refused, 0.1.0 stays current.
    stale = base / "checkout-stale"
    git(base, "clone", "-q", str(repo), str(stale))
    lines = (stale / "constraints.txt").read_text().splitlines(keepends=True)
    (stale / "constraints.txt").write_text("".join(x for x in lines if "pyserial" not in x))
    steps["stale"] = run(stale, root, "--wheelhouse", str(wheels_b), ok=False)
    steps["after_stale"] = look(root)

    steps["upgrade"] = run(repo, root, "--wheelhouse", str(wheels_b)).stdout
    steps["b"] = look(root)
    opt_b = tree(root / "opt" / NAME)
    steps["rerun"] = run(repo, root, "--wheelhouse", str(wheels_b)).stdout
    steps["rerun_changed"] = tree(root / "opt" / NAME) != opt_b
    steps["rollback"] = run(repo, root, "--rollback").stdout
    steps["rolled_back"] = look(root)
    steps["reinstall"] = run(repo, root, "--wheelhouse", str(wheels_b)).stdout
    steps["reinstalled"] = look(root)
    run(repo, root, "--rollback")
    run(repo, root, "--rollback")
    steps["back_and_forth"] = look(root)
    # Back to 0.1.0 with its own installer and wheelhouse: its unit files too, no pip.
    (root / "etc" / "systemd" / "system" / f"{NAME}.service").write_text("# 0.2.0's unit\n")
    steps["older_installer"] = run(checkout_a, root, "--wheelhouse", str(wheels_a)).stdout
    steps["older"] = look(root)
    steps["unit"] = (root / "etc" / "systemd" / "system" / f"{NAME}.service").read_bytes()
    steps["unit_a"] = (checkout_a / "systemd" / f"{NAME}.service").read_bytes()
    # Something else under the running release's version (here: other bytes): refused.
    other = base / "wheels-other"
    other.mkdir()
    (other / "ashyq_kiosk-0.1.0-py3-none-any.whl").write_bytes(b"not the release\n")
    opt_before = tree(root / "opt" / NAME)
    steps["same_version"] = run(checkout_a, root, "--wheelhouse", str(other), ok=False).stderr
    steps["same_version_changed"] = tree(root / "opt" / NAME) != opt_before
    steps["root"] = root
    return steps


def test_the_first_install_runs_the_tagged_release(journey):
    a = journey["a"]
    assert a["version"] == "kiosk 0.1.0"
    assert (a["current"], a["previous"], a["releases"]) == ("releases/0.1.0", None, ["0.1.0"])
    assert "current: 0.1.0" in journey["install_a"]
    # The venv of the layout before releases gave way to the link.
    assert "/venv of the layout before releases" in journey["install_a"]
    assert "nothing to roll back to: only 0.1.0 is installed" in journey["rollback_alone"]


def test_the_installed_dependencies_are_exactly_the_pins(journey):
    constraints = pins((REPO / "constraints.txt").read_text())
    assert pins(journey["a"]["installed"]) == constraints | {"ashyq-kiosk==0.1.0"}
    assert pins(journey["b"]["installed"]) == constraints | {"ashyq-kiosk==0.2.0"}
    # The offline wheelhouse holds the kiosk and every pin, nothing else.
    names = {w.split("-")[0].lower().replace("_", "-") for w in journey["wheels"]}
    assert names == {p.split("==")[0].lower().replace("_", "-") for p in constraints} | {
        "ashyq-kiosk"
    }


def test_a_dependency_missing_from_the_pins_refuses_the_release(journey):
    stale = journey["stale"]
    assert "not pinned in constraints.txt: pyserial" in stale.stderr
    after = journey["after_stale"]
    assert (after["version"], after["current"]) == ("kiosk 0.1.0", "releases/0.1.0")


def test_the_upgrade_switches_to_the_new_release_and_keeps_the_old_one(journey):
    b = journey["b"]
    assert b["version"] == "kiosk 0.2.0"
    assert (b["current"], b["previous"]) == ("releases/0.2.0", "releases/0.1.0")
    assert b["releases"] == ["0.1.0", "0.2.0"]  # 0.0.9 removed: two releases are kept
    assert "removed old release 0.0.9" in journey["upgrade"]
    assert "current: 0.2.0 (was 0.1.0, kept as previous" in journey["upgrade"]


def test_the_unit_runs_the_current_release(journey):
    unit = (REPO / "systemd" / f"{NAME}.service").read_text()
    assert f"ExecStart=/opt/{NAME}/venv/bin/kiosk run" in unit
    root = journey["root"]
    kiosk = root / "opt" / NAME / "venv" / "bin" / "kiosk"
    current = os.readlink(root / "opt" / NAME / "current")
    assert kiosk.resolve() == (root / "opt" / NAME / current / "venv" / "bin" / "kiosk").resolve()


def test_a_rerun_of_the_same_release_changes_nothing(journey):
    assert journey["rerun_changed"] is False
    assert "unchanged: release 0.2.0 is current" in journey["rerun"]


def test_rollback_returns_to_the_previous_release(journey):
    back = journey["rolled_back"]
    assert back["version"] == "kiosk 0.1.0"
    assert (back["current"], back["previous"]) == ("releases/0.1.0", "releases/0.2.0")
    assert "current: 0.1.0 (was 0.2.0" in journey["rollback"]
    assert "systemctl restart ashyq-kiosk" in journey["rollback"]


def test_upgrading_again_after_a_rollback_reuses_the_release(journey):
    again = journey["reinstalled"]
    assert again["version"] == "kiosk 0.2.0"
    assert (again["current"], again["previous"]) == ("releases/0.2.0", "releases/0.1.0")
    assert "release 0.2.0 already in" in journey["reinstall"]
    forth = journey["back_and_forth"]  # --rollback twice: back, then forward again
    assert (forth["version"], forth["current"]) == ("kiosk 0.2.0", "releases/0.2.0")


def test_the_older_releases_installer_goes_back_with_its_unit(journey):
    older = journey["older"]
    assert (older["version"], older["current"]) == ("kiosk 0.1.0", "releases/0.1.0")
    assert older["previous"] == "releases/0.2.0"
    assert "release 0.1.0 already in" in journey["older_installer"]
    assert journey["unit"] == journey["unit_a"]


def test_other_contents_under_the_running_version_are_refused(journey):
    assert "release 0.1.0 is current but was built from something else" in journey["same_version"]
    assert journey["same_version_changed"] is False


def test_the_configuration_is_kept_byte_for_byte_throughout(journey):
    edited = journey["etc"]
    assert "kiosk.toml" in edited and "status-token" in edited and "venue-secret" in edited
    for step in ("after_stale", "b", "rolled_back", "reinstalled", "back_and_forth", "older"):
        assert journey[step]["etc"] == edited, step


def test_rollback_without_any_release_refuses(tmp_path):
    done = run(REPO, tmp_path, "--rollback", ok=False)
    assert done.returncode == 1 and "no release installed" in done.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--rollback", "--skip-venv"], "--rollback only switches releases"),
        (["--wheelhouse", "/nonexistent"], "is not a directory"),
        (["--wheelhouse", "{empty}"], "holds no ashyq_kiosk wheel"),
        (["--wheelhouse", "{two}"], "holds 2 ashyq_kiosk wheels"),
    ],
)
def test_bad_release_options_are_refused_before_anything_changes(tmp_path, args, says):
    (tmp_path / "empty").mkdir()
    (tmp_path / "two").mkdir()
    for v in ("0.1.0", "0.2.0"):
        (tmp_path / "two" / f"ashyq_kiosk-{v}-py3-none-any.whl").touch()
    root = tmp_path / "root"
    args = [a.format(empty=tmp_path / "empty", two=tmp_path / "two") for a in args]
    done = run(REPO, root, *args, ok=False)
    assert done.returncode == 2 and says in done.stderr
    assert not root.exists()
