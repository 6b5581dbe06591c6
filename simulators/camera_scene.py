"""What a kiosk camera sees: a real entrance and a phone held up to it, drawn as a camera would.

The pieces the simulated feed (`simulators.camera_feed`) and the decoder corpus
(`simulators.qr_corpus`) share:

- `entrance`: a static scene with texture, as any real entrance has: posters and notices
  with text, a door frame, floor tiles, in colour (BGR float32);
- `Look`: how one phone is shown: distance (pixels per module), tilt of the phone's plane
  (a perspective warp), motion and focus blur, glare, screen moiré, dark mode, fingers;
- `render_phone`: the phone (and the hand holding it) as a layer with its coverage;
- `expose`: the sensor: a frame-wide gain (low light, mains flicker), shot and read noise;
- `flicker_gain`: lamps on 50 Hz mains pulse at 100 Hz, beating against the frame rate;
- `mjpg`: the frame as an MJPG camera sends it (a JPEG image).

Everything draws from a `numpy.random.Generator`, so a seed fixes every pixel.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "Look",
    "composite",
    "entrance",
    "expose",
    "flicker_gain",
    "mjpg",
    "render_phone",
]

_WORDS = (
    "EXIT",
    "WELCOME",
    "TICKETS",
    "NO SMOKING",
    "OPEN 9-21",
    "GATE 4",
    "SALE -30%",
    "HALL B",
    "KASSA",
    "KIRU",
    "SHYGU",
    "FITNESS",
    "CINEMA 2D/3D",
    "WIFI: GUEST",
    "SCAN YOUR PASS",
    "STAFF ONLY",
)


def entrance(
    rng: np.random.Generator, width: int, height: int, *, busy: bool = False
) -> np.ndarray:
    """A textured static entrance (BGR float32, 0-255): the background every frame shares.

    Posters and notices carry text in several sizes (the kind of texture that looks a lot
    like QR modules to a naive test); ``busy`` adds a dense notice board and more posters.
    """
    ramp = np.linspace(rng.uniform(70, 120), rng.uniform(130, 190), width, dtype=np.float32)
    wall = np.tile(ramp, (height, 1))
    tint = rng.uniform(0.85, 1.1, 3).astype(np.float32)
    scene = wall[:, :, None] * tint[None, None, :]
    floor = int(height * 0.8)
    scene[floor:] *= 0.65
    tile = max(8, width // 16)
    for x in range(0, width, tile):  # floor tile joints
        scene[floor:, x : x + 1] *= 0.6
    door_x = int(rng.uniform(0.05, 0.25) * width)
    door_w = int(width * 0.18)
    scene[int(height * 0.1) : floor, door_x : door_x + door_w] = rng.uniform(40, 90, 3)
    cv2.rectangle(
        scene, (door_x, int(height * 0.1)), (door_x + door_w, floor), (30.0, 30.0, 35.0), 3
    )
    for _ in range(9 if busy else 5):
        _poster(scene, rng, width, height)
    if busy:
        _notice_board(scene, rng, width, height)
    return cv2.GaussianBlur(scene, (0, 0), 0.8)


def _poster(scene: np.ndarray, rng: np.random.Generator, width: int, height: int) -> None:
    pw = int(rng.uniform(0.08, 0.25) * width)
    ph = int(rng.uniform(0.1, 0.35) * height)
    x, y = int(rng.integers(0, width - pw)), int(rng.integers(0, int(height * 0.75)))
    colour = rng.uniform(40, 250, 3)
    scene[y : y + ph, x : x + pw] = colour
    ink = tuple(float(c) for c in (255 - colour) * rng.uniform(0.2, 0.6))
    line_h = max(10, int(ph / rng.uniform(3, 9)))
    font_scale = line_h / 40.0
    text = np.zeros((ph, pw), np.uint8)
    for row in range(line_h, ph, line_h):
        word = _WORDS[int(rng.integers(len(_WORDS)))]
        cv2.putText(
            text,
            word,
            (3, row),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            255,
            max(1, int(font_scale * 2.5)),
            cv2.LINE_AA,
        )
    _ink(scene[y : y + ph, x : x + pw], text, ink)


def _ink(area: np.ndarray, text: np.ndarray, ink: tuple[float, ...] | float) -> None:
    """Blend ``ink`` into ``area`` where ``text`` (uint8 coverage) says: putText wants 8-bit."""
    alpha = text[: area.shape[0], : area.shape[1]].astype(np.float32) / 255.0
    if area.ndim == 3:
        alpha = alpha[:, :, None]
    area[...] = area * (1.0 - alpha) + np.asarray(ink, np.float32) * alpha


def _notice_board(scene: np.ndarray, rng: np.random.Generator, width: int, height: int) -> None:
    bw, bh = int(width * 0.3), int(height * 0.4)
    x, y = int(rng.integers(width // 2, width - bw)), int(height * 0.15)
    scene[y : y + bh, x : x + bw] = (235.0, 235.0, 230.0)
    step = max(6, height // 60)
    text = np.zeros((bh, bw), np.uint8)
    for row in range(step, bh, step):
        line = " ".join(_WORDS[int(i)] for i in rng.integers(0, len(_WORDS), 4))
        cv2.putText(text, line, (2, row), cv2.FONT_HERSHEY_PLAIN, step / 14, 255, 1)
    _ink(scene[y : y + bh, x : x + bw], text, (20.0, 20.0, 20.0))


@dataclass(frozen=True)
class Look:
    """How one phone is shown to the camera. Lengths in camera pixels, angles in degrees."""

    module_px: float = 4.0  # distance: the size of one module at the phone's centre
    yaw_deg: float = 0.0  # the phone's plane turned left/right ...
    pitch_deg: float = 0.0  # ... tipped forward/back (perspective)
    roll_deg: float = 0.0  # turned in its own plane
    centre: tuple[float, float] = (0.5, 0.55)  # where the code is, as fractions of the frame
    focus_sigma: float = 0.6  # Gaussian blur of the phone (out of focus)
    motion_px: float = 0.0  # length of a straight motion-blur streak ...
    motion_deg: float = 0.0  # ... and its direction
    glare: float = 0.0  # 0-1: a reflection of a lamp on the screen
    moire: float = 0.0  # 0-1: the screen's pixel grid beating with the sensor's
    dark_mode: bool = False  # light modules on a dark screen
    finger: float = 0.0  # 0-1: how far a thumb reaches over the code's edge
    dark: float = 35.0  # the screen's darkest and lightest levels before exposure
    light: float = 215.0

    def replace(self, **changes: object) -> Look:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


# Phone pixels per module when the screen is drawn before the warp to the camera.
_SCREEN_PX = 8


def _screen_px(look: Look) -> int:
    """Phone pixels per module: fine enough that the moiré grid is drawn, not aliased away."""
    return max(_SCREEN_PX, math.ceil(look.module_px * 3)) if look.moire > 0 else _SCREEN_PX


def render_phone(
    modules: np.ndarray, look: Look, rng: np.random.Generator, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """The phone showing ``modules`` (1 = dark, quiet zone excluded) and a hand holding it.

    Returns (layer, coverage): the layer (BGR float32) to draw over a scene where the
    coverage (float32, 0-1) says, both frame-sized. Blur is already applied to both.
    """
    spm = _screen_px(look)
    screen, screen_mask = _screen(modules, look, rng, spm)
    sh, sw = screen.shape
    warp = _plane_warp(sw, sh, spm, look, width, height)
    flags = cv2.INTER_LINEAR
    if look.moire <= 0:
        # Anti-alias before shrinking, as a lens does; the moiré look skips it on purpose.
        shrink = spm / look.module_px
        if shrink > 1.2:
            screen = cv2.GaussianBlur(screen, (0, 0), 0.45 * shrink)
    layer = cv2.warpPerspective(screen, warp, (width, height), flags=flags)
    cover = cv2.warpPerspective(screen_mask, warp, (width, height), flags=flags)
    layer = np.repeat(layer[:, :, None], 3, axis=2)
    _hand(layer, cover, warp, sw, sh, look, rng)
    if look.finger > 0:
        _thumb(layer, cover, warp, sw, sh, modules.shape[0] * spm, spm, look, rng)
    return _blur(layer * cover[:, :, None], cover, look)


def _screen(
    modules: np.ndarray, look: Look, rng: np.random.Generator, spm: int
) -> tuple[np.ndarray, np.ndarray]:
    """The phone face in phone pixels: bezel, screen, a title bar, the code (float32)."""
    n = modules.shape[0]
    dark, light = look.dark, look.light
    if look.dark_mode:
        dark, light = light * 0.9, 18.0
    code = np.where(np.kron(modules, np.ones((spm, spm))) == 1, dark, light)
    quiet = 4 * spm
    screen_w = n * spm + 2 * quiet
    screen_h = int(screen_w * 1.6)
    bezel = max(4, screen_w // 24)
    face = np.full((screen_h + 2 * bezel, screen_w + 2 * bezel), 12.0, np.float32)
    face[bezel : bezel + screen_h, bezel : bezel + screen_w] = light
    top = bezel + (screen_h - n * spm) // 2
    face[top : top + n * spm, bezel + quiet : bezel + quiet + n * spm] = code
    # The pass app's status banner and a line of text, above the code's quiet zone.
    banner = int(screen_h * 0.045)
    face[bezel + banner : bezel + 2 * banner, bezel : bezel + screen_w] = rng.uniform(90, 160)
    title = np.zeros(face.shape, np.uint8)
    cv2.putText(
        title,
        "ASHYQ  GREEN",
        (bezel + quiet, bezel + int(screen_h * 0.13)),
        cv2.FONT_HERSHEY_SIMPLEX,
        screen_w / 600,
        255,
        max(1, screen_w // 200),
    )
    _ink(face, title, dark)
    if look.moire > 0:
        # The screen's pixel grid: dark gaps between sub-pixels, finer than the camera samples.
        # One grid period close to one camera pixel: the beat is what makes moiré.
        pitch = spm / look.module_px * rng.uniform(0.8, 1.25)
        yy, xx = np.mgrid[0 : face.shape[0], 0 : face.shape[1]].astype(np.float32)
        grid = np.cos(2 * np.pi * xx / pitch) * np.cos(2 * np.pi * yy / pitch)
        face *= 1.0 - look.moire * 0.5 * (1.0 + grid)
    if look.glare > 0:
        gy, gx = rng.uniform(0.3, 0.7) * face.shape[0], rng.uniform(0.2, 0.8) * face.shape[1]
        radius = rng.uniform(0.15, 0.3) * face.shape[1]
        yy, xx = np.mgrid[0 : face.shape[0], 0 : face.shape[1]].astype(np.float32)
        spot = np.exp(-((xx - gx) ** 2 + ((yy - gy) * 0.6) ** 2) / (2 * radius**2))
        face += look.glare * 255.0 * spot
    return face.astype(np.float32), np.ones_like(face, np.float32)


def _plane_warp(sw: int, sh: int, spm: int, look: Look, width: int, height: int) -> np.ndarray:
    """The perspective map from phone pixels to camera pixels for the phone's pose."""
    # Phone plane in 3-D (phone pixels, centred), turned, then seen by a pinhole camera
    # whose focal length makes one module ``module_px`` wide at the centre.
    corners = np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], np.float64)
    centred = np.c_[corners - (sw / 2, sh / 2), np.zeros(4)]
    yaw, pitch, roll = (math.radians(a) for a in (look.yaw_deg, look.pitch_deg, look.roll_deg))
    rz = np.array(
        [[math.cos(roll), -math.sin(roll), 0], [math.sin(roll), math.cos(roll), 0], [0, 0, 1]]
    )
    ry = np.array(
        [[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]]
    )
    rx = np.array(
        [[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]]
    )
    turned = centred @ (rx @ ry @ rz).T
    distance = 3.0 * max(sw, sh)
    focal = look.module_px / spm * distance
    z = distance + turned[:, 2]
    cx, cy = look.centre[0] * width, look.centre[1] * height
    projected = np.c_[focal * turned[:, 0] / z + cx, focal * turned[:, 1] / z + cy]
    return cv2.getPerspectiveTransform(corners.astype(np.float32), projected.astype(np.float32))


def _hand(
    layer: np.ndarray,
    cover: np.ndarray,
    warp: np.ndarray,
    sw: int,
    sh: int,
    look: Look,
    rng: np.random.Generator,
) -> None:
    """The hand under the phone and the sleeve below it, in skin and clothing tones."""
    bottom = cv2.perspectiveTransform(np.array([[[sw / 2, sh * 0.95]]], np.float32), warp)[0, 0]
    size = cv2.perspectiveTransform(np.array([[[0, 0], [sw, 0]]], np.float32), warp)[0]
    span = float(np.linalg.norm(size[1] - size[0]))
    skin = rng.uniform(110, 190) * np.array([0.8, 0.9, 1.1])
    sleeve = rng.uniform(30, 100, 3)
    x, y = int(bottom[0]), int(bottom[1])
    hand = np.zeros(cover.shape, np.uint8)
    cv2.ellipse(hand, (x, y), (int(span * 0.45), int(span * 0.25)), 0, 0, 360, 1, -1)
    arm = np.zeros(cover.shape, np.uint8)
    cv2.rectangle(
        arm, (x - int(span * 0.3), y + int(span * 0.15)), (x + int(span * 0.3), 10**5), 1, -1
    )
    for mask, colour in ((arm, sleeve), (hand, skin)):
        free = (mask == 1) & (cover < 0.5)  # behind the phone, not over it
        layer[free] = colour
        cover[free] = 1.0


def _thumb(
    layer: np.ndarray,
    cover: np.ndarray,
    warp: np.ndarray,
    sw: int,
    sh: int,
    code_w: int,
    spm: int,
    look: Look,
    rng: np.random.Generator,
) -> None:
    """A thumb over the screen from one side: ``finger`` 1 reaches two modules into the code."""
    quiet_edge = (sw - code_w) / 2 - 4 * spm
    reach = look.finger * 6 * spm  # the 4-module quiet zone, then up to two modules
    from_left = bool(rng.integers(2))
    tip_x = quiet_edge + reach if from_left else sw - quiet_edge - reach
    tip_y = sh * rng.uniform(0.45, 0.6)
    root_x = -sw * 0.2 if from_left else sw * 1.2
    points = np.array([[[tip_x, tip_y], [root_x, tip_y + sh * 0.1], [tip_x, tip_y + 3 * spm]]])
    tip, root, below = cv2.perspectiveTransform(points.astype(np.float32), warp)[0]
    thick = max(3, int(2 * np.linalg.norm(below - tip)))
    mask = np.zeros(cover.shape, np.uint8)
    cv2.line(mask, (int(root[0]), int(root[1])), (int(tip[0]), int(tip[1])), 1, thick)
    cv2.circle(mask, (int(tip[0]), int(tip[1])), max(2, thick // 2), 1, -1)
    skin = rng.uniform(120, 190) * np.array([0.8, 0.9, 1.1])
    layer[mask == 1] = skin
    cover[mask == 1] = 1.0


def _blur(layer: np.ndarray, cover: np.ndarray, look: Look) -> tuple[np.ndarray, np.ndarray]:
    """Focus and motion blur of the premultiplied layer and its coverage together."""
    if look.focus_sigma > 0:
        layer = cv2.GaussianBlur(layer, (0, 0), look.focus_sigma)
        cover = cv2.GaussianBlur(cover, (0, 0), look.focus_sigma)
    if look.motion_px >= 1:
        length = int(round(look.motion_px)) | 1
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0
        turn = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), look.motion_deg, 1.0)
        streak = cv2.warpAffine(kernel, turn, (length, length)).astype(np.float32)
        streak = streak / streak.sum()
        layer = cv2.filter2D(layer, -1, streak)
        cover = cv2.filter2D(cover, -1, streak)
    return layer, cover


def composite(scene: np.ndarray, layer: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """``layer`` (premultiplied by ``cover``) over ``scene``, both BGR float32."""
    out: np.ndarray = scene * (1.0 - cover[:, :, None]) + layer
    return out


def flicker_gain(frame_no: int, fps: float, depth: float, phase: float = 0.0) -> float:
    """The light level of frame ``frame_no`` under lamps pulsing at 100 Hz (50 Hz mains).

    The exposure is short against 10 ms, so each frame catches the lamps at another point
    of their cycle: at 30 fps the level repeats every third frame.
    """
    return 1.0 + depth * math.cos(2 * math.pi * 100.0 * frame_no / fps + phase)


def expose(
    image: np.ndarray, rng: np.random.Generator, *, gain: float = 1.0, read_noise: float = 2.5
) -> np.ndarray:
    """The sensor: ``gain`` (light level), shot noise growing with brightness, read noise."""
    signal = np.clip(image * gain, 0, 255)
    sigma = np.sqrt(read_noise**2 + 0.08 * signal)
    noisy = signal + rng.standard_normal(image.shape, dtype=np.float32) * sigma
    return np.clip(noisy, 0, 255).astype(np.uint8)


def mjpg(frame: np.ndarray, quality: int = 85) -> np.ndarray:
    """``frame`` (BGR or gray uint8) as an MJPG camera sends it: one JPEG image (1-D uint8)."""
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - imencode fails only on an empty or odd array
        raise ValueError(f"cannot encode a {frame.shape} frame as JPEG")
    return data.reshape(-1)
