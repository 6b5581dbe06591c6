"""The `kiosk` command's contract: output, exit statuses, and that `check` records nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from kiosk.cli import main
from support import REPO, TOKEN, write_config

SHARED_PHOTOS = REPO.parent / "shared" / "testdata" / "qr-photos"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cfg_path(tmp_path, status_service):
    return write_config(tmp_path, status_service.url)


def iin_person(population, st):
    return next(p for p in population.with_status(st) if p.sub.startswith("iin:"))


def test_check_admit_prints_json_and_exits_0(capsys, cfg_path, population):
    p = iin_person(population, "green")
    code, out, _ = run(capsys, "check", "--config", str(cfg_path), p.sub[4:])
    doc = json.loads(out)
    assert code == 0
    assert doc["decision"] == "admit" and doc["reason"] == "admitted"
    assert doc["st"] == "green" and doc["via"] == "online" and len(doc["subject"]) == 20
    assert p.sub[4:] not in out  # only the pseudonym and the masked form


def test_check_deny_exits_1(capsys, cfg_path, population):
    p = iin_person(population, "red")
    code, out, _ = run(capsys, "check", "--config", str(cfg_path), p.sub[4:])
    assert code == 1 and json.loads(out)["reason"] == "status_not_allowed"


def test_check_refer_exits_1(capsys, cfg_path, population, status_service):
    status_service.faults.set(down=True)
    p = iin_person(population, "green")
    code, out, _ = run(capsys, "check", "--config", str(cfg_path), p.sub[4:])
    assert code == 1 and json.loads(out)["decision"] == "refer"


def test_check_reads_stdin(monkeypatch, capsys, cfg_path, issuer, population):
    import io

    p = population.with_status("green")[0]
    text = issuer.mint(p.sub, "green")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode() + b"\n")))
    code, out, _ = run(capsys, "check", "--config", str(cfg_path), "-")
    assert code == 0 and json.loads(out)["decision"] == "admit"


def test_check_at_time(capsys, cfg_path, issuer, population):
    p = population.with_status("green")[0]
    iat = 1_700_000_000
    text = issuer.mint(p.sub, "green", iat=iat, valid_s=300)
    code, out, _ = run(capsys, "check", "--config", str(cfg_path), "--at", str(iat + 10), text)
    assert code == 0
    code, out, _ = run(
        capsys, "check", "--config", str(cfg_path), "--at", "2023-11-14T22:30:00Z", text
    )
    assert code == 1 and json.loads(out)["reason"] == "expired"
    code, _, err = run(capsys, "check", "--config", str(cfg_path), "--at", "yesterday", text)
    assert code == 2 and "--at" in err


def test_check_records_nothing(capsys, cfg_path, tmp_path, issuer, population):
    p = population.with_status("green")[0]
    text = issuer.mint(p.sub, "green")
    for _ in range(2):  # a recorded replay entry would refuse the second one
        code, _, _ = run(capsys, "check", "--config", str(cfg_path), text)
        assert code == 0
    assert not (tmp_path / "state").exists()


def test_check_config_error_exits_2(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[kiosk]\nid = 1\n")
    code, _, err = run(capsys, "check", "--config", str(bad), "921029350851")
    assert code == 2
    assert f"{bad}: [kiosk] id: expected a string" in err
    assert "[kiosk] venue_id: is required" in err


def test_check_missing_config_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "check", "--config", str(tmp_path / "none.toml"), "x")
    assert code == 2 and "none.toml" in err


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["check"])
    assert exc.value.code == 2


def test_config_check(capsys, cfg_path):
    code, out, err = run(capsys, "config", "check", "--show", str(cfg_path))
    assert code == 0 and "OK" in err
    shown = json.loads(out)
    assert shown["kiosk"]["venue_secret"] == "***" and shown["status"]["token"] == "***"
    assert TOKEN not in out and "test-venue-secret" not in out


@pytest.mark.parametrize("name", ["gym", "cinema", "airport", "sim"])
def test_sample_profiles_are_valid(capsys, name):
    code, _, err = run(capsys, "config", "check", str(REPO / "config" / f"{name}.toml"))
    assert code == 0, err


def test_decode(capsys, tmp_path):
    from simulators.issuer import qr_png

    png = qr_png("hello kiosk", tmp_path / "code.png")
    code, out, _ = run(capsys, "decode", str(png), str(tmp_path / "missing.png"))
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0] == {"file": str(png), "codes": ["hello kiosk"]}
    assert "error" in lines[1]
    assert code == 1


def test_mint_then_check_as_a_technician_would(tmp_path, status_service):
    """The installed command, end to end: mint a pass, show it to `kiosk check`."""
    cfg = write_config(tmp_path, status_service.url)
    kiosk = [sys.executable, "-m", "kiosk.cli"]
    minted = subprocess.run(
        [*kiosk, "mint", "--status", "green", "--seed", "3"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    text = minted.stdout.strip()
    t0 = time.time()
    checked = subprocess.run(
        [*kiosk, "check", "--config", str(cfg), text], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["decision"] == "admit"
    assert time.time() - t0 < 30


@pytest.fixture
def unsynchronised(monkeypatch):
    """This machine's NTP state, whatever it really is: never synchronised."""
    import kiosk.clockguard

    monkeypatch.setattr(kiosk.clockguard, "kernel_clock_synchronised", lambda: False)


@pytest.mark.parametrize("service", ["down", "none"])
def test_check_at_trusts_the_time_it_is_given(
    capsys, tmp_path, status_service, issuer, population, unsynchronised, service
):
    status_service.faults.set(down=True)
    url = status_service.url if service == "down" else None
    cfg = write_config(tmp_path, url, policy={"offline_rule": "pass"}, status={"deadline_ms": 200})
    p = population.with_status("green")[0]
    iat = int(time.time())
    text = issuer.mint(p.sub, "green", iat=iat, valid_s=300)
    code, out, _ = run(capsys, "check", "--config", str(cfg), "--at", str(iat + 10), text)
    doc = json.loads(out)
    assert (code, doc["decision"], doc["via"]) == (0, "admit", "pass")
    assert "clock" not in doc


@pytest.mark.parametrize("service", ["down", "none"])
def test_check_refers_an_offline_pass_when_the_clock_is_untrusted(
    capsys, tmp_path, status_service, issuer, population, unsynchronised, service
):
    status_service.faults.set(down=True)
    url = status_service.url if service == "down" else None
    cfg = write_config(tmp_path, url, policy={"offline_rule": "pass"}, status={"deadline_ms": 200})
    text = issuer.mint(population.with_status("green")[0].sub, "green", iat=int(time.time()))
    code, out, err = run(capsys, "check", "--config", str(cfg), text)
    doc = json.loads(out)
    assert (code, doc["decision"], doc["reason"]) == (1, "refer", "clock_untrusted")
    assert doc["clock"] == "never synchronised"
    assert "clock untrusted: never synchronised; offline pass decisions are referred" in err
    assert "offline pass decision referred: the clock is not trusted" in err


def test_check_at_a_past_time_is_not_a_clock_gone_back(
    capsys, tmp_path, status_service, issuer, population
):
    """The kiosk's high-water mark is now; --at an hour ago is a given time, not a clock fault."""
    status_service.faults.set(down=True)
    cfg = write_config(
        tmp_path, status_service.url, policy={"offline_rule": "pass"}, status={"deadline_ms": 200}
    )
    (tmp_path / "state").mkdir(exist_ok=True)
    (tmp_path / "state" / "clock.hwm").write_text(f"{time.time():.3f}\n")
    iat = int(time.time()) - 3600
    text = issuer.mint(population.with_status("green")[0].sub, "green", iat=iat, valid_s=300)
    code, out, _ = run(capsys, "check", "--config", str(cfg), "--at", str(iat + 10), text)
    doc = json.loads(out)
    assert (code, doc["decision"], doc["via"]) == (0, "admit", "pass")


@pytest.mark.parametrize(
    "argv",
    [
        ["doctor", "--config", "config/sim.toml"],
        ["config", "check", "--show", "config/sim.toml"],
    ],
)
def test_a_closed_pipe_on_stdout_ends_without_a_traceback(argv):
    """`kiosk doctor | head -1`: the reader goes away, the command ends quietly (Python's
    "Note on SIGPIPE")."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # before anything is written: every write meets a closed pipe
    proc.stdout = None
    _out, err = proc.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
    assert proc.returncode == 1
