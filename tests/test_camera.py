"""The camera path: frame sources and `CameraReader` against the simulated feed, a real video
file and scripted sources. Every wait is on an event with a generous time-out; nothing
asserts on a duration (DEVELOPERS.md principle 7)."""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera import (
    CameraReader,
    CameraStats,
    OpenCVSource,
    Picamera2Source,
    make_source,
)
from drivers.decoder import MotionGate, QrDecoder, make_decoder
from drivers.frames import FrameImages, MjpegFrame
from kiosk.errors import DeviceError, KioskError
from kiosk.gate.inputs import CodeRead, DeviceStatus, Event
from kiosk.reasons import Source
from simulators.camera_feed import SimFrameSource
from simulators.issuer import PassIssuer, qr_matrix

WAIT_S = 10.0


class Events:
    """Collects what a reader emits; waits for the event a test expects."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Event] = queue.Queue()
        self.seen: list[Event] = []

    def emit(self, event: Event) -> None:
        self.queue.put(event)

    def wait_for(self, wanted: Callable[[Event], bool], timeout: float = WAIT_S) -> Event:
        """The first event (from now on) that ``wanted`` accepts; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                event = self.queue.get(timeout=max(0.01, left))
            except queue.Empty:
                pytest.fail(f"no expected event within {timeout} s; saw {self._summary()}")
            self.seen.append(event)
            if wanted(event):
                return event

    def status(self) -> list[DeviceStatus]:
        """Every DeviceStatus emitted so far, including those no test waited for."""
        while not self.queue.empty():
            self.seen.append(self.queue.get_nowait())
        return [e for e in self.seen if isinstance(e, DeviceStatus)]

    def _summary(self) -> str:
        return ", ".join(type(e).__name__ for e in self.seen[-20:]) or "nothing"


def code_of(text: str) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, CodeRead) and e.data == text.encode()


def status(ok: bool) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, DeviceStatus) and e.ok is ok


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def readers() -> Iterator[list[CameraReader]]:
    """Readers a test starts; all stopped at the end, whatever happened."""
    started: list[CameraReader] = []
    yield started
    for source in ScriptedSource.made:
        source.halted.set()
    ScriptedSource.made.clear()
    for reader in started:
        reader.stop()


def a_pass(issuer: PassIssuer) -> str:
    text = issuer.mint("iin:921029350851", "green")
    assert 230 <= len(text) <= 300  # a signed pass, as phones show them
    return text


# -- the simulated feed, end to end -----------------------------------------------------------


@pytest.mark.parametrize("size", [(640, 480), (1280, 720)], ids=["480p", "720p"])
def test_reads_a_signed_pass_from_the_simulated_feed(size, issuer, events, readers):
    feed = SimFrameSource(*size, fps=30, seed=3)
    reader = CameraReader(feed, decoder=make_decoder("zxing"), gate=MotionGate())
    readers.append(reader)
    reader.start(events.emit)
    text = a_pass(issuer)
    feed.show(text, 30.0)

    read = events.wait_for(code_of(text))

    assert read.source is Source.CAMERA
    shown_at = feed.first_shown_at(text)
    assert shown_at is not None
    assert read.t_read >= shown_at
    # Every frame with the code gives a read: the controller, not the reader, de-duplicates.
    events.wait_for(code_of(text))
    assert reader.stats.codes_read >= 2


def test_an_inverted_code_is_read(issuer, events, readers):
    feed = SimFrameSource(640, 480, fps=30, seed=4)
    reader = CameraReader(feed, decoder=make_decoder("zxing"), gate=MotionGate())
    readers.append(reader)
    reader.start(events.emit)
    text = a_pass(issuer)
    feed.show(text, 30.0, inverted=True, scale=0.4)
    events.wait_for(code_of(text))


def test_an_idle_entrance_costs_few_decodes(events, readers):
    feed = SimFrameSource(640, 480, fps=30, seed=5)
    reader = CameraReader(feed, decoder=make_decoder("zxing"), gate=MotionGate())
    readers.append(reader)
    reader.start(events.emit)
    wait_until(lambda: reader.stats.frames_captured >= 90, "90 frames")
    reader.stop()

    stats = reader.stats
    handled = stats.frames_decoded + stats.frames_gated
    assert stats.frames_gated > 0
    # A textured, noisy, flickering entrance: the first frame and the gate's last resort
    # (one frame in 30) are decoded, nothing else.
    assert stats.frames_decoded <= handled // 10 + 2, stats
    assert stats.codes_read == 0


def test_the_idle_pacer_looks_at_one_frame_in_three_and_at_all_once_a_phone_shows(
    issuer, events, readers
):
    feed = SimFrameSource(640, 480, fps=200, seed=31)
    reader = CameraReader(feed, decoder=make_decoder("zxing"), gate=MotionGate(), idle_every=3)
    readers.append(reader)
    reader.start(events.emit)
    # The first frame opens the gate; the pacer rests after its hold of 60 frames.
    wait_until(lambda: reader.stats.frames_paced > 0, "the pacer rests")
    first = reader.stats
    wait_until(lambda: reader.stats.frames_paced >= first.frames_paced + 60, "60 more paced")
    last = reader.stats
    paced = last.frames_paced - first.frames_paced
    looked = (last.frames_gated + last.frames_decoded) - (first.frames_gated + first.frames_decoded)
    assert 2 * looked - 2 <= paced <= 2 * looked + 2, (paced, looked)
    assert last.resting

    text = a_pass(issuer)
    feed.show(text, 30.0)
    events.wait_for(code_of(text))
    busy = reader.stats
    assert not busy.resting  # back to every frame while someone is in view
    wait_until(lambda: reader.stats.frames_decoded >= busy.frames_decoded + 20, "20 decodes")
    assert reader.stats.frames_paced == busy.frames_paced


# -- newest frame only ---------------------------------------------------------------------


class ScriptedSource:
    """Frames the test hands over one by one; each carries its number in pixel (0, 0).

    Like a camera, ``read`` waits for the next frame; `halt` makes it fail so that a stop
    does not wait for a frame that will never come.
    """

    name = "scripted"
    made: list[ScriptedSource] = []

    def __init__(self) -> None:
        self.frames: queue.Queue[np.ndarray] = queue.Queue()
        self.halted = threading.Event()
        self.closed = 0
        ScriptedSource.made.append(self)

    def open(self) -> None:
        pass

    def read(self) -> np.ndarray | None:
        while True:
            try:
                return self.frames.get(timeout=0.05)
            except queue.Empty:
                if self.halted.is_set():
                    raise DeviceError("scripted source halted") from None

    def close(self) -> None:
        self.closed += 1

    def give(self, number: int) -> None:
        frame = np.zeros((48, 64), np.uint8)
        frame[0, 0] = number
        self.frames.put(frame)


class HeldDecoder:
    """Records the number of each frame it is given; holds the first decode until released."""

    name = "held"

    def __init__(self, *, held: bool = True) -> None:
        self.seen: queue.Queue[int] = queue.Queue()
        self.release = threading.Event()
        if not held:
            self.release.set()

    def decode(self, gray: np.ndarray) -> list[bytes]:
        self.seen.put(int(gray[0, 0]))
        self.release.wait(WAIT_S)
        return []


def test_a_slow_decoder_gets_the_newest_frame_and_stale_ones_are_counted(events, readers):
    source = ScriptedSource()
    decoder = HeldDecoder()
    reader = CameraReader(source, decoder=decoder)
    readers.append(reader)
    reader.start(events.emit)

    source.give(1)
    assert decoder.seen.get(timeout=WAIT_S) == 1  # the decoder is now busy with frame 1
    for number in (2, 3, 4, 5):
        source.give(number)
    wait_until(lambda: reader.stats.frames_captured == 5, "frames 2-5 captured")
    decoder.release.set()

    # Frames 2-4 were overwritten while the decoder was busy: it never sees them.
    assert decoder.seen.get(timeout=WAIT_S) == 5
    stats = reader.stats
    assert stats.frames_stale == 3
    source.halted.set()
    reader.stop()
    assert decoder.seen.empty()
    assert source.closed == 1


class SleepyDecoder:
    """A real decoder that takes at least ``delay_s`` per frame (a slow Pi)."""

    def __init__(self, inner: QrDecoder, delay_s: float) -> None:
        self.name = f"sleepy-{inner.name}"
        self._inner = inner
        self._delay_s = delay_s

    def decode(self, gray: np.ndarray) -> list[bytes]:
        time.sleep(self._delay_s)
        return self._inner.decode(gray)


def test_a_slow_decoder_still_reads_and_drops_stale_frames(issuer, events, readers):
    feed = SimFrameSource(640, 480, fps=30, seed=6)
    reader = CameraReader(feed, decoder=SleepyDecoder(make_decoder("zxing"), 0.15))
    readers.append(reader)
    reader.start(events.emit)
    text = a_pass(issuer)
    feed.show(text, 30.0)

    read = events.wait_for(code_of(text))
    first = feed.first_shown_at(text)
    assert first is not None and read.t_read >= first
    wait_until(lambda: reader.stats.frames_stale >= 5, "stale frames")
    reader.stop()
    stats = reader.stats
    # Every captured frame is accounted for once (one may still wait in the holder).
    handled = stats.frames_stale + stats.frames_gated + stats.frames_decoded + stats.frames_failed
    assert stats.frames_captured - handled in (0, 1), stats


# -- the camera vanishes -------------------------------------------------------------------


def test_an_unplugged_camera_is_reported_once_and_reads_again_when_back(
    issuer, events, readers, caplog
):
    caplog.set_level(logging.DEBUG, logger="drivers.camera")
    feed = SimFrameSource(640, 480, fps=30, seed=7)
    reader = CameraReader(feed, decoder=make_decoder("zxing"), reconnect_max_s=0.4)
    readers.append(reader)
    reader.start(events.emit)
    before = a_pass(issuer)
    feed.show(before, 30.0, scale=0.4)
    events.wait_for(code_of(before))

    feed.vanish()
    gone = events.wait_for(status(False))
    assert gone.device == "camera"
    assert "unplugged" in gone.detail
    # Let it retry a few times while unplugged: retries stay silent.
    wait_until(lambda: feed.opens_refused >= 3, "three refused reopen attempts")
    feed.reappear()
    back = events.wait_for(status(True))
    assert back == DeviceStatus("camera", True, "back")

    after = a_pass(issuer)
    feed.show(after, 30.0, scale=0.4)
    events.wait_for(code_of(after))
    assert [s.ok for s in events.status()] == [False, True]
    assert reader.stats.reconnects == 1
    # Said once each way, to debugging only: the journal's lines are the controller's.
    assert len([r for r in caplog.records if "unavailable" in r.getMessage()]) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # Privacy: no decoded content in any log line.
    assert before not in caplog.text and after not in caplog.text


def test_a_camera_missing_at_start_is_reported_and_picked_up_later(events, readers):
    feed = SimFrameSource(640, 480, fps=30, seed=8)
    feed.vanish()
    reader = CameraReader(feed, decoder=make_decoder("zxing"), reconnect_max_s=0.2)
    readers.append(reader)
    reader.start(events.emit)
    events.wait_for(status(False))
    feed.reappear()
    events.wait_for(status(True))
    wait_until(lambda: reader.stats.frames_captured > 0, "frames")
    assert reader.stats.connected


class FlakySource(ScriptedSource):
    """Returns None (a vanished device, as some libraries say it) once, then frames again."""

    def __init__(self) -> None:
        super().__init__()
        self.nones = 1

    def read(self) -> np.ndarray | None:
        if self.nones:
            self.nones -= 1
            return None
        return super().read()


def test_a_read_of_none_counts_as_vanishing(events, readers):
    source = FlakySource()
    reader = CameraReader(source, decoder=HeldDecoder(held=False), reconnect_max_s=0.1)
    readers.append(reader)
    reader.start(events.emit)
    events.wait_for(status(False))
    source.give(1)
    events.wait_for(status(True))
    assert source.closed == 1


# -- errors never stop the reader ------------------------------------------------------------


class BrokenOnceDecoder:
    """Raises on the first frames (a library bug), then decodes normally."""

    name = "broken-once"

    def __init__(self, inner: QrDecoder, failures: int) -> None:
        self._inner = inner
        self.failures = failures

    def decode(self, gray: np.ndarray) -> list[bytes]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("decoder exploded")
        return self._inner.decode(gray)


def test_decoder_errors_are_logged_rate_limited_and_reading_goes_on(
    issuer, events, readers, caplog
):
    caplog.set_level(logging.DEBUG)
    feed = SimFrameSource(640, 480, fps=30, seed=9)
    reader = CameraReader(feed, decoder=BrokenOnceDecoder(make_decoder("zxing"), 5))
    readers.append(reader)
    reader.start(events.emit)
    text = a_pass(issuer)
    feed.show(text, 30.0, scale=0.4)
    events.wait_for(code_of(text))
    assert reader.stats.frames_failed == 5
    failures = [r for r in caplog.records if "exploded" in r.getMessage()]
    assert len(failures) == 1
    assert text not in caplog.text


def test_an_emit_that_raises_does_not_stop_the_reader(issuer, events, readers):
    feed = SimFrameSource(640, 480, fps=30, seed=10)
    calls = []

    def emit(event: Event) -> None:
        calls.append(event)
        if len(calls) == 1:
            raise RuntimeError("controller queue full")
        events.emit(event)

    reader = CameraReader(feed, decoder=make_decoder("zxing"))
    readers.append(reader)
    reader.start(emit)
    text = a_pass(issuer)
    feed.show(text, 30.0, scale=0.4)
    events.wait_for(code_of(text))


def test_stop_ends_both_threads_and_closes_the_source(events):
    source = ScriptedSource()
    reader = CameraReader(source, decoder=HeldDecoder(held=False))
    reader.start(events.emit)
    source.give(7)
    wait_until(lambda: reader.stats.frames_captured == 1, "one frame")
    source.halted.set()
    reader.stop()
    assert not any(t.is_alive() for t in threading.enumerate() if t.name.startswith("camera-"))
    assert source.closed == 1
    with pytest.raises(KioskError):
        reader.start(events.emit)


def test_stats_are_a_snapshot():
    reader = CameraReader(ScriptedSource(), decoder=HeldDecoder())
    stats = reader.stats
    assert isinstance(stats, CameraStats)
    stats.frames_captured = 99
    assert reader.stats.frames_captured == 0
    assert reader.stats.as_dict()["frames_captured"] == 0


# -- OpenCV with a real video file -------------------------------------------------------------


def write_video(path: Path, text: str, frames: int = 45) -> Path:
    """An MJPG .avi of 640x480 BGR frames showing ``text`` as a QR code on a grey wall."""
    modules = np.array(qr_matrix(text), dtype=np.uint8)
    code = np.where(modules == 1, 20, 230).astype(np.uint8)
    code = cv2.resize(code, (300, 300), interpolation=cv2.INTER_NEAREST)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (640, 480))
    assert writer.isOpened()
    try:
        for i in range(frames):
            frame = np.full((480, 640, 3), 120, np.uint8)
            frame[90:390, 170 + i % 3 : 470 + i % 3] = code[:, :, None]
            writer.write(frame)
    finally:
        writer.release()
    return path


def test_opencv_reads_a_video_file_and_its_end_is_the_camera_vanishing(
    issuer, events, readers, tmp_path
):
    text = a_pass(issuer)
    path = write_video(tmp_path / "entrance.avi", text)
    source = make_source(str(path), width=640, height=480, fps=30)
    assert isinstance(source, OpenCVSource)
    reader = CameraReader(source, decoder=make_decoder("zxing"), reconnect_max_s=0.2)
    readers.append(reader)
    reader.start(events.emit)

    read = events.wait_for(code_of(text))
    assert read.source is Source.CAMERA
    ended = events.wait_for(status(False))
    assert "ended" in ended.detail and str(path) in ended.detail
    # The file reopens like a replugged camera and plays again.
    events.wait_for(status(True))
    events.wait_for(code_of(text))


def test_an_mjpg_file_gives_its_jpeg_buffers_undecoded(issuer, tmp_path):
    text = a_pass(issuer)
    source = OpenCVSource(str(write_video(tmp_path / "a.avi", text, frames=2)), fps=1000)
    source.open()
    try:
        frame = source.read()
        # No colour decode in the capture thread: the reader decodes gray, and only as needed.
        assert isinstance(frame, MjpegFrame) and frame.shape == (480, 640, 3)
        images = FrameImages(frame)
        assert images.small().shape == (60, 80)  # a reduced decode for the motion gate
        assert images.gray().shape == (480, 640)
        assert make_decoder("zxing").decode(images.gray()) == [text.encode()]
        source.read()
        with pytest.raises(DeviceError, match="ended"):
            source.read()
    finally:
        source.close()
    source.close()  # idempotent


def test_without_raw_mjpg_frames_come_decoded_in_colour(issuer, tmp_path):
    path = write_video(tmp_path / "a.avi", a_pass(issuer), frames=2)
    source = OpenCVSource(str(path), fps=1000, raw_mjpg=False)
    source.open()
    try:
        frame = source.read()
        assert isinstance(frame, np.ndarray) and frame.shape == (480, 640, 3)
        assert FrameImages(frame).gray().shape == (480, 640)
    finally:
        source.close()


def test_a_video_in_another_codec_is_decoded_by_opencv(tmp_path):
    path = str(tmp_path / "lossless.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter.fourcc(*"FFV1"), 30.0, (320, 240))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write FFV1")
    try:
        for _ in range(2):
            writer.write(np.full((240, 320, 3), 90, np.uint8))
    finally:
        writer.release()
    source = OpenCVSource(path, fps=1000)
    source.open()
    try:
        frame = source.read()
        assert isinstance(frame, np.ndarray) and frame.shape == (240, 320, 3)
    finally:
        source.close()


def test_opencv_errors_name_the_url(tmp_path):
    with pytest.raises(DeviceError, match="/dev/video97"):
        OpenCVSource("/dev/video97").open()
    missing = tmp_path / "nope.avi"
    with pytest.raises(DeviceError, match="nope.avi"):
        OpenCVSource(str(missing)).open()
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video")
    with pytest.raises(DeviceError, match="junk.avi"):
        OpenCVSource(str(junk)).open()
    with pytest.raises(DeviceError, match="not open"):
        OpenCVSource(str(junk)).read()


def test_stream_urls_are_named_without_their_password():
    source = OpenCVSource("rtsp://admin:s3cret@10.0.0.9:554/stream1")
    assert source.name == "rtsp://admin:***@10.0.0.9:554/stream1"
    assert "s3cret" not in source.name


# -- the Pi camera and the URL choices ------------------------------------------------------------


def test_picamera2_missing_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import picamera2 -> ImportError
    source = Picamera2Source(width=1280, height=720, fps=30)
    with pytest.raises(DeviceError) as caught:
        source.open()
    assert str(caught.value) == (
        "picamera2 is not installed: on Raspberry Pi OS apt-get install python3-picamera2"
    )
    with pytest.raises(DeviceError, match="not open"):
        source.read()
    source.close()


def test_picamera2_missing_is_a_vanished_camera_for_the_reader(monkeypatch, events, readers):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    reader = CameraReader(Picamera2Source(), decoder=HeldDecoder(held=False))
    readers.append(reader)
    reader.start(events.emit)
    gone = events.wait_for(status(False))
    assert "apt-get install python3-picamera2" in gone.detail


def test_make_source_chooses_by_url():
    front, side = SimFrameSource(seed=1), SimFrameSource(seed=2)
    sims = {"default": front, "side": side}
    size = {"width": 640, "height": 480, "fps": 30}
    assert isinstance(make_source("picamera2", **size), Picamera2Source)
    assert make_source("sim:", **size, sim_sources=sims) is front
    assert make_source("sim:side", **size, sim_sources=sims) is side
    for url in ("/dev/video0", "/tmp/entrance.avi", "rtsp://cam/1", "http://cam/mjpg"):
        source = make_source(url, **size)
        assert isinstance(source, OpenCVSource)
        assert source.name == url
    with pytest.raises(KioskError, match="sim:side"):
        make_source("sim:back", **size, sim_sources=sims)
    with pytest.raises(KioskError, match="no simulated camera"):
        make_source("sim:", **size)


def test_a_stats_snapshot_always_adds_up_while_both_threads_count():
    """Read while the capture and decode threads count: never a torn snapshot."""
    import threading as _threading

    from drivers.camera import CameraReader

    reader = CameraReader.__new__(CameraReader)
    from drivers.camera import CameraStats

    reader._stats = CameraStats()
    reader._stats_lock = _threading.Lock()
    reader._pacer = None
    done = _threading.Event()

    def capture():
        for _ in range(20_000):
            reader._count(frames_captured=1)
            reader._count(frames_gated=1)
        done.set()

    worker = _threading.Thread(target=capture)
    worker.start()
    while not done.is_set():
        snap = reader.stats
        assert snap.frames_captured - snap.frames_gated in (0, 1)
    worker.join()
    assert reader.stats.frames_gated == 20_000
