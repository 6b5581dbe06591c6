"""Progress clocks: a hung camera read or a hung controller stops the watchdog."""

from __future__ import annotations

import threading
import time

from drivers.camera import CameraReader
from drivers.decoder import make_decoder
from kiosk.liveness import Liveness
from simulators.camera_feed import SimFrameSource


def test_promises_expire():
    now = [0.0]
    live = Liveness(now=lambda: now[0])
    live.beat("a", 5)
    live.beat("b", 1)
    now[0] = 2
    assert live.stale() == ["b"] and not live.alive()
    live.forget("b")
    assert live.alive()


class HangingFeed(SimFrameSource):
    """A camera whose read never returns once told to hang (a wedged USB driver)."""

    def __init__(self) -> None:
        super().__init__(320, 240, 30)
        self.hang = threading.Event()
        self.release = threading.Event()

    def read(self):
        if self.hang.is_set():
            self.release.wait(30)
        return super().read()


def test_a_camera_read_that_never_returns_goes_stale():
    now = [0.0]
    live = Liveness(now=lambda: now[0])
    feed = HangingFeed()
    reader = CameraReader(feed, decoder=make_decoder("zxing"), liveness=live)
    reader.start(lambda event: None)
    try:
        deadline = time.monotonic() + 10
        while feed.frames_served < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        feed.hang.set()
        time.sleep(0.2)  # the capture thread is now stuck in read()
        now[0] += 60
        time.sleep(1.0)  # the decode thread keeps beating; the capture thread cannot
        assert live.stale() == ["camera-capture"]
    finally:
        feed.release.set()
        reader.stop()


def test_a_promise_is_known_until_forgotten():
    live = Liveness(now=lambda: 0.0)
    assert not live.promised("controller")
    live.beat("controller", 5)
    assert live.promised("controller")
    live.forget("controller")
    assert not live.promised("controller")
