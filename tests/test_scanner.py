"""The real serial scanner driver against the real pseudo-terminal simulator (and loop://)."""

from __future__ import annotations

import logging
import queue
import random
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.scanner import LineFramer, SerialScanner
from kiosk.errors import DeviceError
from kiosk.gate.inputs import CodeRead, DeviceStatus, Event
from kiosk.reasons import Source
from simulators.scanner_pty import PtyScanner

WAIT_S = 10.0  # generous: a busy 2-core machine may stall a thread for seconds
IIN = "921029350851"


class Events:
    """Collects what the driver emits; tests wait on it instead of sleeping."""

    def __init__(self) -> None:
        self.q: queue.Queue[Event] = queue.Queue()

    def __call__(self, event: Event) -> None:
        self.q.put(event)

    def next(self) -> Event:
        return self.q.get(timeout=WAIT_S)

    def code(self) -> bytes:
        event = self.next()
        assert isinstance(event, CodeRead), event
        assert event.source is Source.SCANNER
        return event.data

    def status(self) -> DeviceStatus:
        event = self.next()
        assert isinstance(event, DeviceStatus), event
        return event

    def empty(self) -> bool:
        return self.q.empty()


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[PtyScanner]:
    with PtyScanner(tmp_path) as scanner:
        yield scanner


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def driver(sim: PtyScanner, events: Events) -> Iterator[SerialScanner]:
    scanner = SerialScanner(str(sim.path), reconnect_max_s=0.5)
    scanner.start(events)
    assert scanner.wait_ready(WAIT_S)
    yield scanner
    scanner.stop()


# -- framing through the pty ---------------------------------------------------------------


@pytest.mark.parametrize("ending", [b"\r", b"\n", b"\r\n"])
def test_each_line_ending_ends_a_code(sim, driver, events, ending):
    sim.scan(IIN, ending)
    sim.scan("second", ending)
    assert events.code() == IIN.encode()
    assert events.code() == b"second"


def test_code_read_carries_a_monotonic_read_time(sim, driver, events):
    before = time.monotonic()
    sim.scan(IIN)
    event = events.next()
    after = time.monotonic()
    assert isinstance(event, CodeRead)
    # Ordering only, no duration: read after the scan began, before it was received.
    assert before <= event.t_read <= after


def test_crlf_split_across_writes_is_one_ending(sim, driver, events):
    sim.send_raw(b"first\r")
    assert events.code() == b"first"  # CR alone already ends the line
    sim.send_raw(b"\nsecond\r\n")
    assert events.code() == b"second"  # the LF did not make an empty code
    assert events.empty()


def test_chunked_slow_writes_make_one_code(sim, driver, events):
    sim.scan(IIN, chunked=True)
    sim.scan("abcdefghijklmnopqrstuvwxyz", b"\r", chunked=True, chunk_bytes=1)
    assert events.code() == IIN.encode()
    assert events.code() == b"abcdefghijklmnopqrstuvwxyz"


def test_several_codes_in_one_write(sim, driver, events):
    sim.send_raw(b"one\r\ntwo\rthree\nfour\r\n")
    assert [events.code() for _ in range(4)] == [b"one", b"two", b"three", b"four"]


def test_empty_lines_are_ignored(sim, driver, events):
    sim.send_raw(b"\r\n\r\n\n\r\rcode\r\n\r\n\n")
    sim.scan("next")
    assert events.code() == b"code"
    assert events.code() == b"next"
    assert driver.stats.lines == 2


def test_binary_noise_and_non_utf8_are_delivered_as_bytes(sim, driver, events):
    every_byte = bytes(b for b in range(256) if b not in b"\r\n")
    not_utf8 = b"\xff\xfe\xc3(\x80 caf\xe9"
    sim.scan(every_byte)
    sim.scan(not_utf8)
    sim.scan(IIN)
    assert events.code() == every_byte  # raw tty: no byte translated or swallowed
    assert events.code() == not_utf8
    assert events.code() == IIN.encode()
    assert driver.running


def test_overlong_line_is_cut_once_and_the_next_code_is_read(sim, driver, events):
    noise = random.Random(7).randbytes(100_000).translate(None, b"\r\n")
    sim.send_raw(noise + b"\r\n")  # the ending frees the driver from discarding
    sim.scan(IIN)
    cut = events.code()
    assert cut == noise[:4096]
    assert events.code() == IIN.encode()
    assert driver.stats.overlong == 1
    assert driver.stats.lines == 2
    assert driver.stats.bytes == len(noise) + 2 + len(IIN) + 2


# -- unplug and replug ---------------------------------------------------------------------


def test_unplug_then_replug_keeps_working(sim, driver, events, caplog):
    caplog.set_level(logging.DEBUG, logger="drivers.scanner")
    sim.scan(IIN)
    assert events.code() == IIN.encode()
    sim.send_raw(b"half a co")  # left unfinished by the unplug
    sim.unplug()
    down = events.status()
    assert (down.device, down.ok) == ("scanner", False)
    assert down.detail
    sim.replug()
    assert events.status() == DeviceStatus("scanner", True, "back")
    sim.scan("061211600012")
    assert events.code() == b"061211600012"  # the half code did not stick to it
    assert driver.stats.reconnects == 1
    # Told once, as one DeviceStatus each way; the journal line is the controller's own.
    down = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(down) == 1 and all(r.levelno == logging.DEBUG for r in caplog.records)
    assert IIN not in caplog.text and "half a co" not in caplog.text


def test_unplug_twice(sim, driver, events):
    for n in range(2):
        sim.unplug()
        assert events.status().ok is False
        sim.replug()
        assert events.status().ok is True
        sim.scan(f"code{n}")
        assert events.code() == f"code{n}".encode()
    assert driver.stats.reconnects == 2


def test_port_absent_at_start_then_appearing(tmp_path, events):
    folder = tmp_path / "dev"
    scanner = SerialScanner(str(folder / "ttySIM0"), reconnect_max_s=0.5)
    scanner.start(events)  # must not raise
    try:
        down = events.status()
        assert (down.device, down.ok) == ("scanner", False)
        assert down.detail.startswith("absent")
        with PtyScanner(folder) as sim:
            assert events.status() == DeviceStatus("scanner", True, "back")
            sim.scan(IIN)
            assert events.code() == IIN.encode()
    finally:
        scanner.stop()
    assert not scanner.running


def test_device_name_is_used_in_status(tmp_path, events):
    scanner = SerialScanner(str(tmp_path / "nothing"), name="scanner2")
    scanner.start(events)
    try:
        assert events.status().device == "scanner2"
    finally:
        scanner.stop()


# -- URLs, start and stop ------------------------------------------------------------------


def test_loop_url_works(events):
    scanner = SerialScanner("loop://", max_line_bytes=16)
    scanner.start(events)
    try:
        assert scanner.wait_ready(WAIT_S)
        port = scanner.port
        assert port is not None
        port.write(b"abc\r")
        port.write(b"\ndef\n")
        port.write(b"x" * 40 + b"\r\nok\r\n")
        assert [events.code() for _ in range(4)] == [b"abc", b"def", b"x" * 16, b"ok"]
    finally:
        scanner.stop()


def test_loop_url_with_random_split_points(events):
    rng = random.Random(42)
    codes = [rng.randbytes(rng.randint(1, 60)).translate(None, b"\r\n") or b"z" for _ in range(50)]
    stream = b"".join(c + rng.choice([b"\r", b"\n", b"\r\n", b"\r\n\r\n"]) for c in codes)
    scanner = SerialScanner("loop://")
    scanner.start(events)
    try:
        assert scanner.wait_ready(WAIT_S)
        i = 0
        while i < len(stream):
            step = rng.randint(1, 9)
            scanner.port.write(stream[i : i + step])
            i += step
        assert [events.code() for _ in codes] == codes
    finally:
        scanner.stop()


def test_socket_url_reconnects_when_the_peer_goes(events):
    with socket.create_server(("127.0.0.1", 0)) as server:
        host, port = server.getsockname()
        scanner = SerialScanner(f"socket://{host}:{port}", reconnect_max_s=0.5)
        scanner.start(events)
        try:
            peer, _ = server.accept()
            with peer:
                # pyserial drops what arrived before its open finished, as on a serial port.
                assert scanner.wait_ready(WAIT_S)
                peer.sendall(b"abc\r\n")
                assert events.code() == b"abc"
            assert events.status().ok is False
            peer, _ = server.accept()
            with peer:
                assert events.status() == DeviceStatus("scanner", True, "back")
                peer.sendall(b"def\n")
                assert events.code() == b"def"
        finally:
            scanner.stop()


def test_stop_is_prompt_and_closes_the_port(sim, events):
    scanner = SerialScanner(str(sim.path))
    scanner.start(events)
    assert scanner.wait_ready(WAIT_S)
    scanner.stop()  # joins the thread itself; no timing asserted
    assert not scanner.running
    assert scanner.port is None
    assert events.empty()  # a stop is not an unplug


def test_stop_while_retrying(tmp_path, events):
    scanner = SerialScanner(str(tmp_path / "absent"), reconnect_max_s=5.0)
    scanner.start(events)
    assert events.status().ok is False
    scanner.stop()
    assert not scanner.running


def test_start_twice_is_refused_and_restart_after_stop_works(sim, events):
    scanner = SerialScanner(str(sim.path))
    scanner.start(events)
    try:
        with pytest.raises(DeviceError):
            scanner.start(events)
    finally:
        scanner.stop()
    scanner.start(events)
    try:
        assert scanner.wait_ready(WAIT_S)
        sim.scan(IIN)
        assert events.code() == IIN.encode()
    finally:
        scanner.stop()


def test_unknown_url_scheme_is_a_device_error(events):
    with pytest.raises(DeviceError, match="bogus"):
        SerialScanner("bogus://x").start(events)


def test_a_failing_consumer_does_not_kill_the_reader(sim):
    got: queue.Queue[Event] = queue.Queue()
    calls = 0

    def emit(event: Event) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("controller bug")
        got.put(event)

    scanner = SerialScanner(str(sim.path))
    scanner.start(emit)
    try:
        assert scanner.wait_ready(WAIT_S)
        sim.scan("lost")
        sim.scan("kept")
        event = got.get(timeout=WAIT_S)
        assert isinstance(event, CodeRead) and event.data == b"kept"
    finally:
        scanner.stop()


# -- the framer alone ----------------------------------------------------------------------


def test_framer_keeps_a_partial_line_until_its_ending():
    framer = LineFramer(8)
    assert framer.feed(b"abc", 1.0) == []
    assert framer.pending == 3
    assert framer.feed(b"de\r", 2.0) == [(b"abcde", 2.0)]
    assert framer.feed(b"\n", 3.0) == []


def test_framer_line_of_exactly_the_limit_is_not_cut():
    framer = LineFramer(4)
    assert framer.feed(b"abcd\n", 1.0) == [(b"abcd", 1.0)]
    assert framer.overlong == 0
    assert framer.feed(b"abcde\nok\n", 2.0) == [(b"abcd", 2.0), (b"ok", 2.0)]
    assert framer.overlong == 1


def test_framer_cuts_a_flood_once_and_holds_no_more_than_the_limit():
    framer = LineFramer(10)
    out = framer.feed(b"x" * 25, 1.0)
    assert out == [(b"x" * 10, 1.0)]
    for _ in range(100):
        assert framer.feed(b"y" * 1000, 2.0) == []
        assert framer.pending == 0
    assert framer.feed(b"\rnext\r", 3.0) == [(b"next", 3.0)]


def test_framer_reset_drops_the_partial_line():
    framer = LineFramer(10)
    framer.feed(b"half", 1.0)
    framer.reset()
    assert framer.feed(b"whole\n", 2.0) == [(b"whole", 2.0)]


def test_framer_refuses_a_zero_limit():
    with pytest.raises(ValueError):
        LineFramer(0)


_ENDING = st.sampled_from([b"\r", b"\n", b"\r\n"])


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.binary(max_size=40), _ENDING), max_size=20),
    st.binary(max_size=60),
    st.lists(st.integers(min_value=0), max_size=20),
    st.integers(min_value=1, max_value=32),
)
def test_framer_properties(lines, tail, cuts, limit):
    """Random lines, endings and split points: framing never raises, never emits CR or LF,
    never more than the limit; without overlong lines it returns exactly the lines."""
    stream = b"".join(line + ending for line, ending in lines) + tail
    framer = LineFramer(limit)
    out: list[bytes] = []
    for i, chunk in enumerate(_split(stream, cuts)):
        for line, t in framer.feed(chunk, float(i)):
            assert t == float(i)
            out.append(line)
    for line in out:
        assert line
        assert b"\r" not in line and b"\n" not in line
        assert len(line) <= limit
    *complete, tail_part = re.split(rb"[\r\n]+", stream)
    complete = [p for p in complete if p]
    if all(len(p) <= limit for p in [*complete, tail_part]):
        assert out == complete
        assert framer.overlong == 0
        assert framer.pending == len(tail_part)
    else:
        # Each overlong line, even one still unfinished, yields its first `limit` bytes once.
        cut_tail = [tail_part[:limit]] if len(tail_part) > limit else []
        assert out == [p[:limit] for p in complete] + cut_tail
        assert framer.overlong == sum(len(p) > limit for p in [*complete, tail_part])
