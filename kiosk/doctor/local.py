"""Checks of what lives on the kiosk itself: key sets, the state folder, the clock."""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kiosk.clockguard import kernel_clock_state
from kiosk.config import Config
from kiosk.core import EVENTS_DB, LAST_GOOD_KEYS
from kiosk.doctor.report import Check, age_text, size_text
from kiosk.errors import KioskError
from kiosk.jwks import KeySet
from kiosk.policy import OfflineRule

MB = 1_000_000
DISK_WARN_BELOW = 200 * MB
"""Below this much free space the state folder is reported as a warning."""
DISK_FAIL_BELOW = 50 * MB
"""Below this the event store may soon refuse to record (SQLite needs room for its WAL)."""

EARLIEST_PLAUSIBLE = datetime(2026, 11, 1, tzinfo=UTC)
"""No correct clock reads earlier than this release; a Pi without a battery clock that
boots offline does (1970, or the last fake-hwclock save). Move it forward at each release."""

SERVICE_USER = "ashyq-kiosk"
"""The user the kiosk service runs as (systemd/ashyq-kiosk.sysusers)."""

CLOCK_HWM = "clock.hwm"
"""File in the state folder holding the latest wall time (epoch seconds) the kiosk has seen."""

_SYNC_FIX = "enable systemd-timesyncd / check network (timedatectl shows the sync state)"
_MAX_KIDS_SHOWN = 6


# -- key sets ------------------------------------------------------------------------------


def _read_key_set(path: str | Path) -> tuple[KeySet, int]:
    """The usable keys of a JWK Set file and how many entries were ignored as unusable."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise KioskError(f"{path}: cannot read: {exc.strerror}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise KioskError(f"{path}: not JSON: {exc}") from exc
    keys = KeySet.from_document(doc, source=str(path))
    return keys, len(doc["keys"]) - len(keys)


def _kids(keys: KeySet) -> str:
    kids = keys.kids()
    shown = ", ".join(kids[:_MAX_KIDS_SHOWN])
    return shown + (
        f", … {len(kids) - _MAX_KIDS_SHOWN} more" if len(kids) > _MAX_KIDS_SHOWN else ""
    )


def _key_summary(keys: KeySet, ignored: int) -> str:
    n = len(keys)
    text = f"{n} usable key{'s' if n != 1 else ''}" + (f" ({_kids(keys)})" if n else "")
    return text + (
        f", {ignored} unusable entr{'ies' if ignored != 1 else 'y'} ignored" if ignored else ""
    )


def check_pass_keys(cfg: Config, *, now: float | None = None) -> Check:
    """The configured pass keys, and the last good copy fetched from the status service."""
    name = "pass keys"
    path = cfg.passes.keys_file
    fix_file = f"put the authority's pass JWK Set (Ed25519 keys) at {path} ([passes] keys_file)"
    try:
        configured, ignored = _read_key_set(path)
    except KioskError as exc:
        return Check.failed(name, str(exc), fix_file)
    notes: list[str] = []
    saved = 0
    last_good = cfg.state_dir / LAST_GOOD_KEYS
    if last_good.exists():
        try:
            fetched, _ = _read_key_set(last_good)
        except KioskError as exc:
            return Check.warned(
                name,
                _key_summary(configured, ignored),
                f"delete {last_good}: the kiosk ignores it and fetches a new copy",
                notes=[f"last fetched copy unusable: {exc}"],
            )
        saved = len(fetched)
        age = (time.time() if now is None else now) - last_good.stat().st_mtime
        notes.append(f"last fetched copy: {_key_summary(fetched, 0)}, saved {age_text(age)} ago")
    elif cfg.passes.refresh_keys and cfg.status.backend == "http":
        notes.append("no fetched copy yet (saved after the first GET /v1/keys)")
    detail = _key_summary(configured, ignored)
    if len(configured) == 0 and saved == 0:
        return Check.failed(
            name, f"{detail}: no signed pass can be verified", fix_file, notes=notes
        )
    if len(configured) == 0:
        return Check.warned(
            name,
            f"{detail} configured: passes verify with the fetched copy only",
            fix_file,
            notes=notes,
        )
    if ignored:
        return Check.warned(
            name, detail, f"remove or correct the unusable entries in {path}", notes=notes
        )
    return Check.passed(name, detail, notes=notes)


def check_operator_keys(cfg: Config) -> Check:
    """The operator key set that signs remote commands (mqtt.md)."""
    name = "operator keys"
    path = cfg.operators.keys_file
    fix = "set [operators] keys_file to the fleet's operator JWK Set"
    if path is None:
        if cfg.mqtt.enabled:
            return Check.warned(
                name, "not configured: every remote command (open_once, lockdown) is refused", fix
            )
        return Check.skipped(name, "not configured (MQTT off: no remote commands)")
    try:
        keys, ignored = _read_key_set(path)
    except KioskError as exc:
        return Check.failed(name, str(exc), fix)
    detail = _key_summary(keys, ignored)
    if not keys:
        return Check.failed(name, f"{detail}: every remote command is refused", fix)
    if ignored:
        return Check.warned(name, detail, f"remove or correct the unusable entries in {path}")
    return Check.passed(name, detail)


# -- the state folder ----------------------------------------------------------------------


def _write_probe(folder: Path) -> None:
    """Create, write, sync and remove a file in ``folder``: OSError when that cannot be done.

    A real write, not os.access: root passes every permission check, and a disk remounted
    read-only after a file system error fails only a real write.
    """
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".doctor-")
    try:
        os.write(fd, b"kiosk doctor\n")
        os.fsync(fd)
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _store_size(folder: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            total += (folder / (EVENTS_DB + suffix)).stat().st_size
    return total


def _service_user_cannot_write(folder: Path) -> list[Path]:
    """The state folder and store files the service user could not write, when it exists.

    The doctor usually runs as root, whose own write probe proves little for the service:
    a kiosk once started by hand as root leaves root-owned files the service cannot open.
    """
    try:
        user = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return []  # not installed as a service (development, simulation)
    groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if SERVICE_USER in g.gr_mem}
    blocked = []
    for path in [folder, *(folder / (EVENTS_DB + s) for s in ("", "-wal", "-shm"))]:
        try:
            st = path.stat()
        except OSError:
            continue
        if st.st_uid == user.pw_uid:
            can = st.st_mode & stat.S_IWUSR
        elif st.st_gid in groups:
            can = st.st_mode & stat.S_IWGRP
        else:
            can = st.st_mode & stat.S_IWOTH
        if not can:
            blocked.append(path)
    return blocked


def check_state_dir(cfg: Config) -> Check:
    """The state folder: there or creatable, writable, with free space; the event store size."""
    name = "state dir"
    folder = cfg.state_dir
    fix_where = "set [kiosk] state_dir to a writable folder on a disk with room"
    notes: list[str] = []
    if folder.is_dir():
        try:
            _write_probe(folder)
        except OSError as exc:
            return Check.failed(
                name,
                f"{folder} is not writable: {exc.strerror}",
                f"chown -R {SERVICE_USER}: {folder}; if the disk went read-only "
                f"(mount | grep ' ro,'), check it and reboot; or {fix_where}",
            )
        blocked = _service_user_cannot_write(folder)
        if blocked:
            return Check.failed(
                name,
                f"{', '.join(map(str, blocked))}: not writable by the service user {SERVICE_USER}",
                f"chown -R {SERVICE_USER}: {folder}",
            )
        measured = folder
        store = _store_size(folder)
        store_text = f"event store {size_text(store)}" if store else "no event store yet"
    else:
        parent = folder.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if folder.exists() or not parent.is_dir():
            blocker = folder if folder.exists() else parent
            return Check.failed(
                name,
                f"{folder} cannot be created: {blocker} is a file, not a folder",
                f"{fix_where} (or remove {blocker})",
            )
        try:
            os.rmdir(tempfile.mkdtemp(dir=parent, prefix=".doctor-"))
        except OSError as exc:
            return Check.failed(
                name, f"{folder} cannot be created in {parent}: {exc.strerror}", fix_where
            )
        measured = parent
        store_text = "does not exist yet (the kiosk creates it)"
    usage = shutil.disk_usage(measured)
    detail = f"{folder}: writable, {size_text(usage.free)} free, {store_text}"
    if usage.free < DISK_FAIL_BELOW:
        return Check.failed(
            name,
            f"{folder}: only {size_text(usage.free)} free: events may soon not be recorded",
            "free disk space (journalctl --vacuum-size=100M, old files, apt-get clean); "
            + fix_where,
            notes=notes,
        )
    if usage.free < DISK_WARN_BELOW:
        return Check.warned(
            name,
            detail + f" (under {size_text(DISK_WARN_BELOW)})",
            "free disk space soon (journalctl --vacuum-size=100M, old files, apt-get clean)",
            notes=notes,
        )
    return Check.passed(name, detail, notes=notes)


# -- the clock -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClockSync:
    """The kernel's view of its clock: ``synced`` None when it could not be asked."""

    synced: bool | None
    max_error_ms: float | None = None


def kernel_clock_sync() -> ClockSync:
    """Ask the kernel (adjtimex with no changes) whether NTP keeps its clock synchronised."""
    synced, max_error_ms = kernel_clock_state()
    return ClockSync(synced, max_error_ms)


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pass_rule_inactive(cfg: Config) -> list[str]:
    """The venue's offline rule `pass` rests on this clock: say plainly that it is off."""
    if cfg.policy.offline_rule is not OfflineRule.PASS:
        return []
    return [
        'offline_rule = "pass" is inactive until the clock is synchronised: while the '
        "status service is down, passes are referred to staff (clock_untrusted)"
    ]


def check_clock(cfg: Config, *, now: float | None = None, sync: ClockSync | None = None) -> Check:
    """Wall clock after the release date and not behind the kiosk's high-water mark; NTP sync."""
    name = "clock"
    now = time.time() if now is None else now
    sync = kernel_clock_sync() if sync is None else sync
    set_fix = "set the time: " + _SYNC_FIX
    if now < EARLIEST_PLAUSIBLE.timestamp():
        return Check.failed(
            name,
            f"wall clock says {_utc(now)}, before this software was released "
            f"({EARLIEST_PLAUSIBLE:%Y-%m-%d}): passes will be judged wrongly",
            set_fix,
        )
    notes: list[str] = []
    hwm_path = cfg.state_dir / CLOCK_HWM
    hwm_problem = ""
    if hwm_path.exists():
        try:
            hwm = float(hwm_path.read_text(encoding="ascii").strip())
        except (OSError, ValueError, UnicodeDecodeError):
            hwm_problem = f"{hwm_path} is unreadable"
        else:
            # Behind by more than the pass leeway: the clock went backwards since the kiosk
            # last ran, and passes, answers and events would carry wrong times.
            if now < hwm - cfg.kiosk.leeway_s:
                return Check.failed(
                    name,
                    f"wall clock {_utc(now)} is {age_text(hwm - now)} behind the latest time "
                    f"this kiosk has seen ({_utc(hwm)}): it went backwards",
                    set_fix,
                    notes=_pass_rule_inactive(cfg),
                )
            notes.append(f"not behind the last time seen ({_utc(hwm)})")
    if sync.synced is None:
        sync_text = "sync state unknown"
    elif sync.synced:
        err = f", max error {sync.max_error_ms:.0f} ms" if sync.max_error_ms is not None else ""
        sync_text = "synchronised" + err
    else:
        return Check.warned(
            name,
            f"{_utc(now)}, NOT synchronised (kernel reports TIME_ERROR)",
            _SYNC_FIX,
            notes=[*_pass_rule_inactive(cfg), *notes],
        )
    detail = f"{_utc(now)}, {sync_text}"
    if hwm_problem:
        return Check.warned(
            name, detail, f"delete {hwm_path}; the kiosk writes it again", notes=[hwm_problem]
        )
    return Check.passed(name, detail, notes=notes)
