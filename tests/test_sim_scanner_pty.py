"""The pseudo-terminal scanner simulator on its own, read through plain pyserial."""

from __future__ import annotations

import os
import select
import threading
import time
from pathlib import Path

import pytest
import serial

from kiosk.errors import DeviceError
from simulators.scanner_pty import Happening, PtyScanner

WAIT_S = 10.0


def read_until(port: serial.SerialBase, expected: int) -> bytes:
    """Read ``expected`` bytes, waiting generously (no timing asserted)."""
    data = b""
    deadline = time.monotonic() + WAIT_S
    while len(data) < expected and time.monotonic() < deadline:
        data += port.read(expected - len(data))
    return data


def open_port(path: Path) -> serial.SerialBase:
    return serial.serial_for_url(str(path), baudrate=9600, timeout=0.05)


def test_path_is_a_stable_symlink_to_a_pty(tmp_path):
    with PtyScanner(tmp_path, name="ttyX") as sim:
        assert sim.path == tmp_path / "ttyX"
        assert sim.path.is_symlink()
        assert os.readlink(sim.path) == sim.device
        assert sim.device.startswith("/dev/pts/")
        assert sim.plugged


def test_bytes_arrive_untranslated(tmp_path):
    with PtyScanner(tmp_path) as sim, open_port(sim.path) as port:
        every_byte = bytes(range(256))
        sim.send_raw(every_byte)
        sim.scan("code", b"\r")
        assert read_until(port, 256 + 5) == every_byte + b"code\r"  # CR stays CR


def test_chunked_scan_sends_the_same_bytes(tmp_path):
    with PtyScanner(tmp_path) as sim, open_port(sim.path) as port:
        sim.scan("921029350851", chunked=True, chunk_bytes=2)
        assert read_until(port, 14) == b"921029350851\r\n"


def test_timeline_holds_sizes_never_text(tmp_path):
    with PtyScanner(tmp_path) as sim, open_port(sim.path):
        sim.scan("921029350851")
        sim.send_raw(b"\x00\x01")
        sim.unplug()
        sim.replug()
        assert [(h.event, h.nbytes) for h in sim.timeline] == [
            ("scan", 12),
            ("raw", 2),
            ("unplug", 0),
            ("replug", 0),
        ]
        assert all(isinstance(h, Happening) for h in sim.timeline)
        times = [h.t for h in sim.timeline]
        assert times == sorted(times)
        assert "921029350851" not in repr(sim.timeline)


def test_unplug_fails_the_hosts_reads_and_removes_the_path(tmp_path):
    """What Linux does: the slave reads nothing although readable (pyserial raises
    SerialException), in_waiting fails with EIO, and the /dev/pts node goes away."""
    with PtyScanner(tmp_path) as sim:
        port = open_port(sim.path)
        device = sim.device
        sim.unplug()
        assert not sim.path.exists() and not sim.path.is_symlink()
        assert sim.device is None and not sim.plugged
        assert not os.path.exists(device)
        with pytest.raises(serial.SerialException):
            port.read(1)
        with pytest.raises(OSError):
            _ = port.in_waiting
        port.close()
        with pytest.raises(DeviceError):
            sim.scan("x")
        with pytest.raises(serial.SerialException):
            open_port(sim.path)


def test_replug_repoints_the_same_path(tmp_path):
    with PtyScanner(tmp_path) as sim:
        sim.unplug()
        sim.unplug()  # no-op
        sim.replug()
        sim.replug()  # no-op
        assert os.readlink(sim.path) == sim.device
        with open_port(sim.path) as port:
            sim.scan("back")
            assert read_until(port, 6) == b"back\r\n"
        assert [h.event for h in sim.timeline] == ["unplug", "replug", "scan"]


def test_data_sent_before_the_host_opens_is_buffered_by_the_pty(tmp_path):
    # pyserial flushes input on open, so the driver never sees it: like a real device's
    # stale bytes. Here the raw slave is read without pyserial to show the pty keeps it.
    with PtyScanner(tmp_path) as sim:
        sim.send_raw(b"early")
        fd = os.open(sim.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            select.select([fd], [], [], WAIT_S)
            assert os.read(fd, 16) == b"early"
        finally:
            os.close(fd)


def test_close_removes_its_own_folder_and_is_idempotent():
    sim = PtyScanner()
    folder = sim.folder
    assert sim.path.is_symlink()
    sim.close()
    sim.close()
    assert not folder.exists()
    with pytest.raises(DeviceError):
        sim.replug()


def test_close_keeps_a_given_folder(tmp_path):
    with PtyScanner(tmp_path):
        pass
    assert tmp_path.exists()
    assert list(tmp_path.iterdir()) == []


def test_big_write_waits_for_the_host_to_drain(tmp_path):
    with PtyScanner(tmp_path) as sim, open_port(sim.path) as port:
        got = bytearray()

        def reader() -> None:
            deadline = time.monotonic() + WAIT_S
            while len(got) < 200_000 and time.monotonic() < deadline:
                got.extend(port.read(65536))

        thread = threading.Thread(target=reader)
        thread.start()
        sim.send_raw(b"a" * 200_000)  # far more than the pty's buffer
        thread.join()
        assert len(got) == 200_000
