"""scripts/install.sh into a scratch root: what it lays down, and that a re-run changes nothing.

The installer runs for real (systemd-sysusers, systemd-tmpfiles and systemctl --root all
work on a directory), with --skip-venv so no packages are downloaded, and --no-apt.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from kiosk.config import load_config
from support import REPO, SIM_KEYS

INSTALL = REPO / "scripts" / "install.sh"
NAME = "ashyq-kiosk"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the installer creates root-owned files"),
    pytest.mark.skipif(
        shutil.which("systemd-tmpfiles") is None or shutil.which("systemd-sysusers") is None,
        reason="needs systemd's sysusers and tmpfiles tools",
    ),
]


def install(root: Path, **env: str) -> str:
    done = subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), "--no-apt", "--skip-venv"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def manifest(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its type, mode, owner, link target and content digest."""
    out: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            what = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            what = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            what = None
        out[str(path.relative_to(root))] = (stat.filemode(st.st_mode), st.st_uid, st.st_gid, what)
    return out


def db(root: Path, name: str) -> dict[str, list[str]]:
    """``root``/etc/passwd or group as {name: fields}."""
    lines = (root / "etc" / name).read_text().splitlines()
    return {line.split(":")[0]: line.split(":") for line in lines if line}


def mode_owner(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    out = install(root)
    assert "Next steps" in out and "systemctl start ashyq-kiosk" in out
    return root


def test_user_and_groups(root):
    passwd, group = db(root, "passwd"), db(root, "group")
    user = passwd[NAME]
    uid, gid, shell = int(user[2]), int(user[3]), user[6]
    assert 0 < uid < 1000 and shell == "/usr/sbin/nologin"  # a system user without a login
    assert int(group[NAME][2]) == gid
    for device_group in ("gpio", "video", "dialout"):
        assert NAME in group[device_group][3].split(","), device_group
    # The numbers Debian gives these groups, so a later base-passwd agrees.
    assert (group["video"][2], group["dialout"][2]) == ("44", "20")


def test_configuration_and_secret_are_readable_by_the_service_only(root):
    gid = int(db(root, "group")[NAME][2])
    etc = root / "etc" / NAME
    assert mode_owner(etc) == (0o750, 0, gid)
    assert mode_owner(etc / "kiosk.toml") == (0o640, 0, gid)
    assert mode_owner(etc / "venue-secret") == (0o640, 0, gid)
    assert (etc / "kiosk.toml").read_text() == (REPO / "config" / "production.toml").read_text()
    secret = (etc / "venue-secret").read_text()
    assert len(secret) == 64 and int(secret, 16) > 0  # 32 random bytes, hex
    uid = int(db(root, "passwd")[NAME][2])
    assert mode_owner(root / "var" / "lib" / NAME) == (0o750, uid, gid)


def test_the_template_loads_once_the_integrator_adds_keys_and_token(root, tmp_path):
    etc = tmp_path / "etc"
    shutil.copytree(root / "etc" / NAME, etc)
    shutil.copy(SIM_KEYS / "passes.jwks.json", etc / "passes.jwks.json")
    (etc / "status-token").write_text("token-from-the-integrator\n")
    cfg = load_config(etc / "kiosk.toml")
    assert cfg.venue_secret.reveal_bytes() == (root / "etc" / NAME / "venue-secret").read_bytes()
    assert cfg.token is not None and cfg.token.reveal() == "token-from-the-integrator"
    assert cfg.gpio.pin_factory == "lgpio" and cfg.gate.fail_safe is False


def test_unit_installed_and_enabled(root):
    unit = root / "etc" / "systemd" / "system" / f"{NAME}.service"
    assert unit.read_bytes() == (REPO / "systemd" / f"{NAME}.service").read_bytes()
    assert mode_owner(unit) == (0o644, 0, 0)
    wants = unit.parent / "multi-user.target.wants" / f"{NAME}.service"
    assert os.readlink(wants) == f"/etc/systemd/system/{NAME}.service"
    lib = root / "usr" / "lib"
    assert (lib / "sysusers.d" / f"{NAME}.conf").read_bytes() == (
        REPO / "systemd" / f"{NAME}.sysusers"
    ).read_bytes()
    assert (lib / "tmpfiles.d" / f"{NAME}.conf").is_file()


def test_venv_placeholder_when_skipped(root):
    opt = root / "opt" / NAME
    assert "--skip-venv" in (opt / "VENV-SKIPPED").read_text()
    assert not (opt / "venv").exists()
    assert (opt / "kiosk.toml.template").is_file()


def test_second_run_changes_nothing(root):
    before = manifest(root)
    out = install(root)
    assert manifest(root) == before
    assert "kept" in out and "created" not in out and "generated" not in out


def test_upgrade_keeps_the_integrators_configuration_and_secret(tmp_path):
    root = tmp_path / "root"
    install(root)
    etc = root / "etc" / NAME
    edited = (etc / "kiosk.toml").read_text().replace("CHANGE-ME-kiosk-01", "gym-almaty-07")
    (etc / "kiosk.toml").write_text(edited)
    secret = (etc / "venue-secret").read_bytes()
    unit = root / "etc" / "systemd" / "system" / f"{NAME}.service"
    unit.write_text("# an older version of the unit\n")

    out = install(root)

    assert (etc / "kiosk.toml").read_text() == edited
    assert (etc / "venue-secret").read_bytes() == secret
    assert unit.read_bytes() == (REPO / "systemd" / f"{NAME}.service").read_bytes()
    assert f"installed {unit}" in out


def test_without_systemd_sysusers_the_shadow_tools_do_the_same(tmp_path):
    root = tmp_path / "root"
    install(root, SYSUSERS="none")
    group = db(root, "group")
    assert NAME in db(root, "passwd")
    for device_group in ("gpio", "video", "dialout"):
        assert NAME in group[device_group][3].split(","), device_group
    before = manifest(root)
    install(root, SYSUSERS="none")
    assert manifest(root) == before
