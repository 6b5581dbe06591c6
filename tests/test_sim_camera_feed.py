"""The simulated camera feed: what its frames show, its timeline, unplugging, thread safety.

Most feeds here run at a high frame rate so a test reads many frames quickly; nothing
asserts on timing.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from drivers.decoder import MotionGate, make_decoder
from drivers.frames import FrameImages, as_mjpeg
from kiosk.errors import DeviceError
from simulators.camera_feed import SimFrameSource, code_ref
from simulators.issuer import PassIssuer

FAST = 1000.0  # frames per second: reads barely wait


@pytest.fixture(scope="module")
def zxing():
    return make_decoder("zxing")


def opened(*args, **kwargs) -> SimFrameSource:
    feed = SimFrameSource(*args, **kwargs)
    feed.open()
    return feed


def a_pass(issuer: PassIssuer) -> str:
    return issuer.mint("iin:921029350851", "green")


def gray(frame: np.ndarray) -> np.ndarray:
    """A frame as the camera path sees it: the JPEG decoded to luminance."""
    return FrameImages(as_mjpeg(frame)).gray()


def test_frames_are_mjpg_of_the_asked_size_and_repeatable():
    one, two = opened(320, 240, FAST, seed=11), opened(320, 240, FAST, seed=11)
    frame = one.read()
    jpeg = as_mjpeg(frame)
    assert jpeg is not None and jpeg.shape == (240, 320, 3)  # colour JPEG, as cameras send
    assert np.array_equal(frame.data, two.read().data)
    assert not np.array_equal(opened(320, 240, FAST, seed=12).read().data, frame.data)
    # Sensor noise: consecutive frames of an empty entrance differ, but only slightly.
    after = gray(one.read()).astype(int)
    assert 0 < np.abs(after - gray(frame)).mean() < 10


def test_without_mjpg_frames_are_gray_like_a_luminance_plane():
    frame = opened(320, 240, FAST, seed=11, mjpg=False).read()
    assert frame.shape == (240, 320) and frame.dtype == np.uint8


def test_each_read_returns_a_frame_of_its_own():
    feed = opened(160, 120, FAST)
    first = feed.read().data
    first[:] = 0
    assert feed.read().data.any()


def test_the_scene_is_textured_like_a_real_entrance():
    frame = gray(opened(640, 480, FAST, seed=22, flicker=0.0).read())
    edges = cv2.Canny(frame, 60, 180)
    # Posters and notices with text: far more edges than a plain wall and a door frame.
    assert np.count_nonzero(edges) > 0.01 * edges.size


def test_lamps_flicker_at_100_hz_against_30_fps():
    feed = opened(320, 240, 30.0, seed=23, flicker=0.08)
    levels = [float(gray(feed.read()).mean()) for _ in range(6)]
    # 100 Hz over 30 fps: the light level repeats every third frame, and varies by percent.
    assert levels[0:3] == pytest.approx(levels[3:6], rel=0.01)
    assert max(levels[:3]) / min(levels[:3]) > 1.03
    steady = opened(320, 240, 30.0, seed=23, flicker=0.0)
    levels = [float(gray(steady.read()).mean()) for _ in range(3)]
    assert max(levels) / min(levels) < 1.01


@pytest.mark.parametrize("size", [(640, 480), (1280, 720)], ids=["480p", "720p"])
@pytest.mark.parametrize("inverted", [False, True], ids=["dark-on-light", "light-on-dark"])
def test_a_shown_pass_decodes_from_the_frames(size, inverted, issuer, zxing):
    feed = opened(*size, FAST, seed=13)
    text = a_pass(issuer)
    feed.show(text, 60.0, inverted=inverted, scale=0.38)
    feed.read()  # exposed before the phone came up
    frames = [gray(feed.read()) for _ in range(6)]  # one round of the cycle
    reads = sum(zxing.decode(f) == [text.encode()] for f in frames)
    assert reads >= 4


def test_the_code_is_a_realistic_size(issuer):
    feed = opened(640, 480, FAST, seed=14)
    idle = gray(feed.read()).astype(int)
    feed.show(a_pass(issuer), 60.0, scale=0.3)
    feed.read()
    feed.read()
    shown = gray(feed.read()).astype(int)  # the same frame of the cycle as idle
    changed_rows = np.flatnonzero((np.abs(shown - idle) > 40).any(axis=1))
    # The person and phone cover much of the frame, but not all of it.
    assert 0.3 * 480 < changed_rows.size < 480


def test_a_frame_takes_one_interval_from_light_to_reader(issuer):
    feed = opened(320, 240, FAST, seed=15)
    text = a_pass(issuer)
    idle = feed.read()
    feed.show(text, 60.0)
    # The frame sent next was exposed before the phone came up: it is still empty.
    assert feed.first_shown_at(text) is None
    assert np.array_equal(feed.read().data, feed._idle[1])
    assert feed.first_shown_at(text) is None
    feed.read()
    first, in_view = feed.first_shown_at(text), feed.first_in_view_at(text)
    assert first is not None and in_view is not None and in_view < first
    feed.read()
    assert feed.first_shown_at(text) == first
    assert feed.first_shown_at("something never shown") is None
    assert feed.first_in_view_at("something never shown") is None
    assert idle is not None


def test_the_timeline_names_codes_by_reference_only(issuer):
    feed = opened(320, 240, FAST, seed=16)
    text = a_pass(issuer)
    feed.show(text, 60.0)
    feed.read()
    feed.read()
    feed.clear()
    feed.read()
    feed.read()
    feed.vanish()
    feed.reappear()
    events = [event for _, event in feed.timeline]
    ref = code_ref(text)
    assert events == [f"show {ref}", f"gone {ref}", "vanish", "reappear"]
    assert len(ref) == 12 and ref not in text
    assert text not in repr(feed.timeline)
    times = [t for t, _ in feed.timeline]
    assert times == sorted(times)
    assert times[0] == feed.first_shown_at(text)


def test_a_presentation_ends_after_its_duration(issuer):
    feed = opened(320, 240, FAST, seed=17)
    text = a_pass(issuer)
    feed.show(text, 0.05)
    for _ in range(10_000):
        feed.read()
        if any(event.startswith("gone") for _, event in feed.timeline):
            break
    (shown_t, _), (gone_t, gone) = feed.timeline
    assert gone == f"gone {code_ref(text)}"
    assert gone_t >= shown_t + 0.05


def test_a_new_presentation_replaces_the_one_running(issuer):
    feed = opened(320, 240, FAST, seed=18)
    first, second = a_pass(issuer), a_pass(issuer)
    feed.show(first, 60.0)
    feed.read()
    feed.read()
    feed.show(second, 60.0)
    feed.read()
    feed.read()
    events = [event for _, event in feed.timeline]
    assert events == [
        f"show {code_ref(first)}",
        f"gone {code_ref(first)}",
        f"show {code_ref(second)}",
    ]


def test_cleared_frames_are_idle_again(issuer):
    feed = opened(640, 480, FAST, seed=19)
    idle = [feed.read().data for _ in range(6)]
    feed.show(a_pass(issuer), 60.0)
    feed.read()
    assert not any(np.array_equal(feed.read().data, i) for i in idle)
    feed.clear()
    frames = [feed.read().data for _ in range(7)]
    assert any(np.array_equal(f, i) for f in frames for i in idle)


def test_unplugged_reads_and_opens_fail_until_it_reappears():
    feed = opened(160, 120, FAST)
    feed.read()
    feed.vanish()
    with pytest.raises(DeviceError, match="unplugged"):
        feed.read()
    with pytest.raises(DeviceError, match="not connected"):
        feed.open()
    assert feed.opens_refused == 1
    feed.reappear()
    with pytest.raises(DeviceError, match="not open"):
        feed.read()  # replugged, but nobody opened it yet
    feed.open()
    assert gray(feed.read()).shape == (120, 160)


def test_read_before_open_fails():
    with pytest.raises(DeviceError, match="not open"):
        SimFrameSource(160, 120).read()


def test_bad_arguments_are_refused(issuer):
    with pytest.raises(ValueError):
        SimFrameSource(10, 10)
    feed = SimFrameSource(160, 120)
    with pytest.raises(ValueError, match="duration_s"):
        feed.show("x", 0)
    with pytest.raises(ValueError, match="scale"):
        feed.show("x", 1.0, scale=2.0)


@pytest.mark.parametrize("size", [(640, 480), (1280, 720)], ids=["480p", "720p"])
def test_an_idle_feed_keeps_the_motion_gate_shut(size):
    feed = opened(*size, FAST, seed=20, busy=True)
    gate = MotionGate()
    decisions = [gate.should_decode(FrameImages(as_mjpeg(feed.read())).small()) for _ in range(90)]
    # The first frame and the gate's periodic last resort only: texture, noise and flicker
    # are not motion.
    assert sum(decisions) <= 9


def test_show_from_another_thread_while_reading():
    feed = opened(320, 240, 200.0, seed=21)
    texts = [f"code {i}" for i in range(20)]
    stop = threading.Event()
    frames: list[np.ndarray] = []

    def capture() -> None:
        while not stop.is_set():
            frames.append(feed.read())

    thread = threading.Thread(target=capture)
    thread.start()
    try:
        for text in texts:
            feed.show(text, 0.01, scale=0.5)
            feed.clear()
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    shows = [event for _, event in feed.timeline if event.startswith("show")]
    assert len(shows) == len(set(shows))  # no presentation began twice
    assert all(as_mjpeg(f).shape == (240, 320, 3) for f in frames)
