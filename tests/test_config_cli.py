"""Files that used to crash the loader: every command answers with a configuration error
naming the file (exit 2 for the one-shot commands, 78 for the daemon), never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.cli import main
from support import write_config

KIOSK = [sys.executable, "-m", "kiosk.cli"]


def bad_files(tmp: Path) -> dict[str, Path]:
    """name -> a file (or folder) that is not a usable configuration."""
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        files[name] = tmp / f"{name}.toml"
        files[name].write_bytes(data)

    good = write_config(tmp, None).read_text()
    put("timezone_int", good.replace('timezone = "UTC"', "timezone = 5").encode())
    put("nested", b"a = " + b"{b = " * 3000 + b"1" + b"}" * 3000 + b"\n")
    put("nested_arrays", b"a = " + b"[" * 3000 + b"]" * 3000 + b"\n")
    put("huge_int", f"{good}\n[gate]\nunlock_s = {'9' * 5000}\n".encode())
    put("nan", f"{good}\n[gate]\nunlock_s = nan\n".encode())
    put("not_utf8", b"[kiosk]\nid = '\xff\xfe'\n")
    put("nul_path", good.replace("passes.jwks.json", "passes\\u0000.jwks.json").encode())
    put("bad_time", f'{good}\n[[policy.hours]]\nopen = "25:99"\n'.encode())
    put("empty", b"")
    put("table_for_string", good.replace('id = "k1"', "id = { a = 1 }").encode())
    files["folder"] = tmp / "folder.toml"
    files["folder"].mkdir()
    files["missing"] = tmp / "missing.toml"
    return files


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return bad_files(tmp_path)


def assert_config_error(path: Path, code: int, err: str, expected: int) -> None:
    assert code == expected, err
    assert "Traceback" not in err
    assert f"config error: {path}: " in err


def test_config_check_and_run_exit_2_and_78(files: dict[str, Path]) -> None:
    for name, path in files.items():
        checked = subprocess.run(
            [*KIOSK, "config", "check", str(path)], capture_output=True, text=True, timeout=60
        )
        assert_config_error(path, checked.returncode, checked.stderr, 2)
        ran = subprocess.run(
            [*KIOSK, "run", "--config", str(path)], capture_output=True, text=True, timeout=60
        )
        assert_config_error(path, ran.returncode, ran.stderr, 78)
        assert ran.stdout == "", name  # the daemon started nothing


def test_check_and_doctor_exit_2(files: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    for name, path in files.items():
        code = main(["check", "--config", str(path), "921029350851"])
        _, err = capsys.readouterr()
        assert_config_error(path, code, err, 2)
        assert main(["doctor", "--config", str(path)]) == 2, name
        out, _ = capsys.readouterr()
        assert f"{path}" in out and "configuration  FAIL" in out


def test_messages_name_section_and_key(files: dict[str, Path], capsys) -> None:
    expected = {
        "timezone_int": "[policy] timezone: expected a string, got 5",
        "nested": "nested too deeply",
        "huge_int": "not valid TOML: Exceeds the limit",
        "nan": "[gate] unlock_s: nan is not a finite number",
        "not_utf8": "not UTF-8 text",
        "nul_path": "[passes] keys_file: contains a NUL character",
        "bad_time": "[[policy.hours]] #1 open: '25:99' is not a time of day",
        "empty": "[kiosk] venue_id: is required",
        "table_for_string": "[kiosk] id: expected a string, got {'a': 1}",
        "folder": "cannot read: Is a directory",
        "missing": "cannot read: No such file or directory",
    }
    for name, text in expected.items():
        assert main(["config", "check", str(files[name])]) == 2
        _, err = capsys.readouterr()
        assert text in err, (name, err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of any mode")
def test_unreadable_file(tmp_path: Path, capsys) -> None:
    path = write_config(tmp_path, None)
    path.chmod(0)
    assert main(["config", "check", str(path)]) == 2
    assert "cannot read: Permission denied" in capsys.readouterr().err


def test_unreadable_file_even_for_root(tmp_path: Path, capsys, monkeypatch) -> None:
    """The same, with the kernel's answer given at the boundary (the tests may run as root)."""
    path = write_config(tmp_path, None)

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", refuse)
    assert main(["config", "check", str(path)]) == 2
    assert f"config error: {path}: cannot read: Permission denied" in capsys.readouterr().err


def test_fifo_device_and_huge_file(tmp_path: Path, capsys) -> None:
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    huge = tmp_path / "huge.toml"
    huge.write_text("# " + "x" * (1 << 20) + "\n")
    cases = {fifo: "not a regular file", Path("/dev/zero"): "not a regular file", huge: "larger"}
    for path, words in cases.items():
        assert main(["config", "check", str(path)]) == 2
        err = capsys.readouterr().err
        assert f"config error: {path}: " in err and words in err, err
