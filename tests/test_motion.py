"""The motion gate and the idle pacer, frame by frame (no clock, no threads).

Frames are drawn by `simulators.camera_scene` as the simulated camera draws them: a static
entrance with posters and text, sensor noise, lamps flickering at 100 Hz, a phone held up.
"""

from __future__ import annotations

import numpy as np
import pytest

from drivers.frames import FrameImages
from drivers.motion import IdlePacer, MotionGate
from kiosk.errors import KioskError
from simulators import camera_scene as cs
from simulators.camera_feed import SimFrameSource
from simulators.issuer import qr_matrix

PASS_TEXT = "eyJhbGciOiJFZERTQSJ9." + "x" * 200 + ".sig"


class Entrance:
    """A still, textured entrance seen by a noisy sensor under flickering lamps."""

    def __init__(
        self,
        size: tuple[int, int] = (640, 480),
        *,
        seed: int = 1,
        flicker: float = 0.08,
        read_noise: float = 3.0,
        busy: bool = True,
    ) -> None:
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.scene = cs.entrance(self.rng, *size, busy=busy)
        self.flicker = flicker
        self.read_noise = read_noise
        self.frame_no = 0

    def frame(self, picture: np.ndarray | None = None) -> np.ndarray:
        """The next frame (gray, as decoded from the camera's JPEG)."""
        gain = cs.flicker_gain(self.frame_no, 30.0, self.flicker, 0.3)
        self.frame_no += 1
        shot = cs.expose(
            self.scene if picture is None else picture,
            self.rng,
            gain=gain,
            read_noise=self.read_noise,
        )
        return FrameImages(cs.mjpg(shot, 85)).small()

    def with_phone(self, text: str = PASS_TEXT, **look: object) -> np.ndarray:
        """The scene with a person's phone held up (a picture to pass to `frame`)."""
        modules = np.array(qr_matrix(text, border=0), dtype=np.uint8)
        height = self.size[1]
        chosen = cs.Look(module_px=0.3 * height / modules.shape[0]).replace(**look)
        layer, cover = cs.render_phone(modules, chosen, self.rng, *self.size)
        return cs.composite(self.scene, layer, cover)


@pytest.mark.parametrize("size", [(640, 480), (1280, 720)], ids=["480p", "720p"])
def test_the_gate_rests_in_front_of_a_textured_noisy_flickering_entrance(size):
    entrance = Entrance(size)
    gate = MotionGate()
    opened = [gate.should_decode(entrance.frame()) for _ in range(90)]
    # The first frame, then the periodic last resort only (every 30th frame).
    assert sum(opened) / len(opened) <= 0.1
    assert gate.last_reason in ("idle", "periodic")


def test_a_frame_wide_change_of_light_is_not_motion():
    entrance = Entrance(flicker=0.0)
    gate = MotionGate(every_n_frames=1000)
    for _ in range(5):
        gate.should_decode(entrance.frame())
    # The lamps dim by a quarter, or the camera's exposure changes: all cells change alike.
    dimmer = entrance.scene * 0.75
    assert not gate.should_decode(entrance.frame(dimmer))
    assert gate.last_reason == "idle"


def test_a_noisier_sensor_does_not_open_the_gate():
    entrance = Entrance(read_noise=9.0)  # a dim hall, the gain turned up
    gate = MotionGate(every_n_frames=1000)
    opened = [gate.should_decode(entrance.frame()) for _ in range(60)]
    assert sum(opened[10:]) == 0


@pytest.mark.parametrize("dark_mode", [False, True], ids=["light", "dark-mode"])
def test_the_gate_opens_on_the_first_frame_showing_a_phone_and_stays_open(dark_mode):
    entrance = Entrance()
    gate = MotionGate(every_n_frames=1000)
    for _ in range(20):
        gate.should_decode(entrance.frame())
    phone = entrance.with_phone(dark_mode=dark_mode)
    assert gate.should_decode(entrance.frame(phone))
    assert gate.last_reason == "changed"
    # Held perfectly still, the phone keeps every frame decoded (no "wait N frames" rule,
    # no "it stopped moving, stop looking" rule).
    assert all(gate.should_decode(entrance.frame(phone)) for _ in range(30))
    # The person leaves: the entrance is empty again at once.
    entrance.frame()
    gate.should_decode(entrance.frame())
    assert not gate.should_decode(entrance.frame())


def test_a_small_phone_far_away_still_opens_the_gate():
    entrance = Entrance((1280, 720))
    gate = MotionGate(every_n_frames=1000)
    for _ in range(10):
        gate.should_decode(entrance.frame())
    far = entrance.with_phone(module_px=1.8)
    assert gate.should_decode(entrance.frame(far))


def test_something_left_behind_is_learnt_in_the_end():
    entrance = Entrance(flicker=0.0)
    gate = MotionGate(every_n_frames=10**6, hold_rate=0.1)
    for _ in range(5):
        gate.should_decode(entrance.frame())
    entrance.scene = entrance.scene.copy()
    entrance.scene[200:400, 100:250] = 60.0  # a bag put down by the door
    opened = [gate.should_decode(entrance.frame()) for _ in range(80)]
    assert opened[0] and not any(opened[-20:])


def test_the_gate_decodes_every_n_frames_as_a_last_resort():
    entrance = Entrance()
    gate = MotionGate(every_n_frames=5)
    verdicts = [gate.should_decode(entrance.frame()) for _ in range(16)]
    assert verdicts == [True] + ([False] * 4 + [True]) * 3
    assert gate.last_reason == "periodic"


def test_the_gate_sees_the_same_from_a_reduced_or_a_full_size_image():
    feed = SimFrameSource(1280, 720, 1000.0, seed=4)
    feed.open()
    small, full = MotionGate(), MotionGate()
    for _ in range(40):
        images = FrameImages(feed.read())
        assert small.should_decode(images.small()) == full.should_decode(images.gray())


def test_the_gate_starts_over_when_the_frame_size_changes():
    gate = MotionGate()
    gate.should_decode(Entrance().frame())
    gate.should_decode(Entrance().frame())
    assert gate.should_decode(Entrance((1280, 720)).frame())
    assert gate.last_reason == "first"


def test_the_gate_refuses_nonsense():
    with pytest.raises(KioskError, match="every_n_frames"):
        MotionGate(every_n_frames=0)
    with pytest.raises(KioskError, match="grid_width"):
        MotionGate(grid_width=2)


# -- IdlePacer ----------------------------------------------------------------------------


def test_the_pacer_looks_at_one_frame_in_n_while_resting():
    pacer = IdlePacer(idle_every=3, hold_frames=10)
    assert not pacer.resting  # every frame at first, while the gate learns the entrance
    assert all(pacer.look() for _ in range(9))
    looks = [pacer.look() for _ in range(9)]
    assert pacer.resting
    assert looks == [False, False, True] * 3


def test_motion_brings_back_every_frame_and_rest_returns_after_the_hold():
    pacer = IdlePacer(idle_every=3, hold_frames=10)
    while not pacer.look():
        pass
    pacer.saw(True)  # the gate opened on that frame
    assert not pacer.resting
    looks = []
    for _ in range(9):
        looked = pacer.look()
        looks.append(looked)
        pacer.saw(False)
    assert all(looks)  # full rate while holding: the frame that opened and 9 more
    assert sum(pacer.look() for _ in range(9)) == 3
    assert pacer.resting


def test_an_idle_every_of_one_looks_at_every_frame():
    pacer = IdlePacer(idle_every=1)
    assert all(pacer.look() for _ in range(50))
    with pytest.raises(KioskError, match="idle_every"):
        IdlePacer(idle_every=0)
