"""The simulated camera feed: what its frames show, its timeline, unplugging, thread safety.

Most feeds here run at a high frame rate so a test reads many frames quickly; nothing
asserts on timing.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from drivers.decoder import MotionGate, make_decoder
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


def test_frames_are_gray_of_the_asked_size_and_repeatable():
    one, two = opened(320, 240, FAST, seed=11), opened(320, 240, FAST, seed=11)
    frame = one.read()
    assert frame.shape == (240, 320) and frame.dtype == np.uint8
    assert np.array_equal(frame, two.read())
    assert not np.array_equal(opened(320, 240, FAST, seed=12).read(), frame)
    # Sensor noise: consecutive frames of an empty entrance differ, but only slightly.
    after = one.read().astype(int)
    assert 0 < np.abs(after - frame).mean() < 8


def test_each_read_returns_a_frame_of_its_own():
    feed = opened(160, 120, FAST)
    first = feed.read()
    first[:] = 0
    assert feed.read().any()


@pytest.mark.parametrize("size", [(640, 480), (1280, 720)], ids=["480p", "720p"])
@pytest.mark.parametrize("inverted", [False, True], ids=["dark-on-light", "light-on-dark"])
def test_a_shown_pass_decodes_from_the_frames(size, inverted, issuer, zxing):
    feed = opened(*size, FAST, seed=13)
    text = a_pass(issuer)
    feed.show(text, 60.0, inverted=inverted, scale=0.38)
    frames = [feed.read() for _ in range(6)]  # one round of the noise frames
    reads = sum(zxing.decode(f) == [text.encode()] for f in frames)
    assert reads >= 4


def test_the_code_is_a_realistic_size(issuer):
    feed = opened(640, 480, FAST, seed=14)
    idle = feed.read().astype(int)
    feed.show(a_pass(issuer), 60.0, scale=0.3)
    shown = feed.read().astype(int)
    changed_rows = np.flatnonzero((np.abs(shown - idle) > 40).any(axis=1))
    # The person and phone cover much of the frame, but not all of it.
    assert 0.3 * 480 < changed_rows.size < 480


def test_first_shown_at_is_the_time_the_first_frame_with_the_code_was_returned(issuer):
    feed = opened(320, 240, FAST, seed=15)
    text = a_pass(issuer)
    feed.read()
    assert feed.first_shown_at(text) is None
    feed.show(text, 60.0)
    assert feed.first_shown_at(text) is None  # not before a frame shows it
    feed.read()
    first = feed.first_shown_at(text)
    assert first is not None
    feed.read()
    assert feed.first_shown_at(text) == first
    assert feed.first_shown_at("something never shown") is None


def test_the_timeline_names_codes_by_reference_only(issuer):
    feed = opened(320, 240, FAST, seed=16)
    text = a_pass(issuer)
    feed.show(text, 60.0)
    feed.read()
    feed.clear()
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
    feed.show(second, 60.0)
    feed.read()
    events = [event for _, event in feed.timeline]
    assert events == [
        f"show {code_ref(first)}",
        f"gone {code_ref(first)}",
        f"show {code_ref(second)}",
    ]


def test_cleared_frames_are_idle_again(issuer):
    feed = opened(640, 480, FAST, seed=19)
    idle = [feed.read() for _ in range(6)]
    feed.show(a_pass(issuer), 60.0)
    assert not np.array_equal(feed.read(), idle[0])
    feed.clear()
    frames = [feed.read() for _ in range(6)]
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
    assert feed.read().shape == (120, 160)


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


def test_an_idle_feed_keeps_the_motion_gate_shut():
    feed = opened(640, 480, FAST, seed=20)
    gate = MotionGate()
    decisions = [gate.should_decode(feed.read()) for _ in range(60)]
    # The first frame and the gate's periodic last resort only: noise is not motion.
    assert sum(decisions) <= 7


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
    assert all(f.shape == (240, 320) for f in frames)
