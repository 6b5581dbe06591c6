"""The release's version: from the git tag (setuptools-scm), the same in the package's
metadata, in `kiosk --version` and in the retained MQTT state; a checkout without tags or
without .git still builds. (Tagged releases, v0.1.0 and v0.2.0, are built and installed
in test_release_upgrade.py.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from importlib.metadata import version as dist_version
from pathlib import Path

import pytest
from release_support import build_wheel, commit, git, snapshot, wheel_version

import kiosk
from kiosk.cli import main
from kiosk.config import load_config
from kiosk.daemon import Daemon
from mqtt_support import Observer
from simulators.world import World
from support import REPO, write_config

PREFIX = "ashyq/v1"


def built_version(checkout: Path, out: Path) -> str:
    """The version pip builds ``checkout`` as."""
    return wheel_version(build_wheel(checkout, out))


def test_version_comes_from_the_installed_metadata(capsys):
    assert kiosk.__version__ == dist_version("ashyq-kiosk")
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"kiosk {kiosk.__version__}"


def test_an_untagged_clone_and_a_copy_without_git_still_build(tmp_path):
    repo = snapshot(tmp_path / "repo")
    # A copy before any build (a build leaves PKG-INFO behind, which setuptools-scm reads).
    copy = shutil.copytree(repo, tmp_path / "copy", ignore=shutil.ignore_patterns(".git"))
    # A fresh shallow clone of a branch without tags (the CI's): a dev version naming the
    # commit.
    commit(repo, "NOTE", "beyond the shallow clone's depth\n", "a second commit")
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow))
    untagged = built_version(shallow, tmp_path / "untagged")
    assert re.fullmatch(r"0\.0\.1\.dev1\+unknown\.g[0-9a-f]+", untagged), untagged
    # A tarball or copied folder: no .git at all, the fallback.
    assert built_version(copy, tmp_path / "nogit") == "0.0.0+unknown"


def test_the_retained_state_carries_the_version(tmp_path, mosquitto):
    cfg = load_config(
        write_config(
            tmp_path,
            None,
            kiosk={"id": "k1", "venue_id": "v1"},
            mqtt={"enabled": True, "brokers": [mosquitto.url]},
            gpio={"pin_factory": "mock"},
        )
    )
    state_topic = f"{PREFIX}/kiosk/k1/state"
    watcher = Observer(mosquitto, state_topic)
    world = World(cfg)
    cfg = world.simulated(cfg, state_dir=tmp_path / "state")
    daemon = Daemon(cfg, sim=world.hardware())
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        states = watcher.wait_for(
            lambda ps: [s for s in map(json.loads, ps) if s.get("online")], state_topic
        )
    finally:
        daemon.stop()
        runner.join(15)
        world.close()
        watcher.close()
    assert states[0]["version"] == kiosk.__version__ == dist_version("ashyq-kiosk")


def test_a_checkout_never_installed_says_it_is_unversioned(tmp_path):
    # The package alone (a checkout may hold a build's .egg-info, which is metadata), run
    # with -S: no site-packages, so no installed metadata either.
    shutil.copytree(REPO / "kiosk", tmp_path / "kiosk")
    done = subprocess.run(
        [sys.executable, "-S", "-c", "import kiosk; print(kiosk.__version__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert done.stdout.strip() == "0.0.0+unknown"
