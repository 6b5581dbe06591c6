"""A seeded corpus of camera frames of phones showing passes, for the decoder tests and benchmark.

Each frame is drawn as the kiosk's camera would deliver it (`simulators.camera_scene`): a
textured entrance, a phone held up showing a real pass (a JWS minted by `PassIssuer` for a
subject of the test population) or a bare IIN, seen through a sensor, sent as MJPG and
decoded to gray the way the camera path decodes it. One degradation class per frame,
on top of the ordinary imperfections every frame has (a slightly turned phone, a little
blur, noise, JPEG). Frames are made in memory, never written to the repository; the same
seed gives the same frames.

    .venv/bin/python -m simulators.qr_corpus --out /tmp/corpus --per-kind 4   # to look at
"""

from __future__ import annotations

import argparse
import base64
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from simulators import camera_scene as cs
from simulators.issuer import PassIssuer, qr_matrix
from simulators.population import generate

__all__ = ["KINDS", "SIZES", "Sample", "corpus", "sample"]

SIZES: tuple[tuple[int, int], ...] = ((640, 480), (1280, 720), (1920, 1080))
KINDS: tuple[str, ...] = (
    "plain",
    "perspective",
    "distance",
    "motion_blur",
    "focus_blur",
    "low_light",
    "glare",
    "moire",
    "jpeg",
    "dark_mode",
    "fingers",
    "busy_background",
)
_IAT = 1_764_000_000  # a fixed issue time: the same seed mints the same passes


@dataclass(frozen=True)
class Sample:
    """One corpus frame: its class, size, the gray frame and the exact bytes it encodes."""

    kind: str
    size: tuple[int, int]
    index: int
    gray: np.ndarray
    expected: bytes
    module_px: float

    @property
    def label(self) -> str:
        """A short name: class, size, index (never the code's content)."""
        return f"{self.kind}/{self.size[0]}x{self.size[1]}/{self.index}"


class _Texts:
    """Passes and bare IINs of the test population, minted deterministically."""

    def __init__(self, seed: int) -> None:
        self._issuer = PassIssuer.load()
        self._people = generate(200, seed=seed + 1)

    def pick(self, rng: np.random.Generator) -> str:
        person = self._people[int(rng.integers(len(self._people)))]
        if rng.random() < 0.25 and person.iin is not None:
            return person.iin  # a bare IIN, as the older Ashyq codes carry
        jti = base64.urlsafe_b64encode(rng.bytes(9)).decode("ascii")
        iat = _IAT + int(rng.integers(0, 86_400))
        return self._issuer.mint(person.sub, person.st, iat=iat, jti=jti)


def _look(
    kind: str, rng: np.random.Generator, n: int, height: int
) -> tuple[cs.Look, dict[str, Any]]:
    """The phone's look and the exposure settings for one frame of ``kind``."""
    u = rng.uniform
    fill = u(0.25, 0.42)  # the code's side over the frame height: arm's length
    if kind == "busy_background":
        fill = u(0.18, 0.3)
    look = cs.Look(
        module_px=fill * height / n,
        yaw_deg=u(-12, 12),
        pitch_deg=u(-12, 12),
        roll_deg=u(-15, 15),
        centre=(u(0.35, 0.65), u(0.42, 0.6)),
        focus_sigma=u(0.4, 0.8),
        dark=u(20, 55),
        light=u(175, 235),
    )
    exposure = {"gain": u(0.9, 1.1), "read_noise": u(2.0, 3.5), "quality": int(u(70, 90))}
    m = look.module_px
    if kind == "perspective":
        big = u(30, 50) * rng.choice([-1, 1])
        look = look.replace(yaw_deg=big) if rng.random() < 0.5 else look.replace(pitch_deg=big)
    elif kind == "distance":
        look = look.replace(module_px=u(1.4, 2.3), focus_sigma=u(0.3, 0.5))
    elif kind == "motion_blur":
        look = look.replace(motion_px=u(0.6, 1.6) * m, motion_deg=u(0, 180))
    elif kind == "focus_blur":
        look = look.replace(focus_sigma=u(0.45, 0.8) * m)
    elif kind == "low_light":
        exposure.update(gain=u(0.22, 0.4), read_noise=u(5.0, 9.0))
    elif kind == "glare":
        look = look.replace(glare=u(0.5, 1.0))
    elif kind == "moire":
        look = look.replace(moire=u(0.35, 0.7))
    elif kind == "jpeg":
        exposure.update(quality=int(u(20, 40)))
    elif kind == "dark_mode":
        look = look.replace(dark_mode=True)
    elif kind == "fingers":
        look = look.replace(finger=u(0.6, 1.0))
    return look, exposure


def sample(
    kind: str, size: tuple[int, int], index: int, *, seed: int = 0, texts: _Texts | None = None
) -> Sample:
    """Frame ``index`` of class ``kind`` at ``size`` (width, height) for ``seed``."""
    if kind not in KINDS:
        raise ValueError(f"unknown corpus class {kind!r}; choose one of: {', '.join(KINDS)}")
    width, height = size
    rng = np.random.default_rng([seed, KINDS.index(kind), width, index])
    text = (texts or _Texts(seed)).pick(rng)
    modules = np.array(qr_matrix(text, border=0), dtype=np.uint8)
    look, exposure = _look(kind, rng, modules.shape[0], height)
    scene = cs.entrance(rng, width, height, busy=kind == "busy_background")
    layer, cover = cs.render_phone(modules, look, rng, width, height)
    frame = cs.expose(
        cs.composite(scene, layer, cover),
        rng,
        gain=exposure["gain"],
        read_noise=exposure["read_noise"],
    )
    data = cs.mjpg(frame, exposure["quality"])
    gray = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    assert gray is not None  # our own JPEG
    return Sample(kind, size, index, gray, text.encode("ascii"), look.module_px)


def corpus(
    per_kind: int,
    *,
    sizes: Sequence[tuple[int, int]] = SIZES,
    kinds: Sequence[str] = KINDS,
    seed: int = 0,
) -> Iterator[Sample]:
    """``per_kind`` frames of every class at every size, in a fixed order."""
    texts = _Texts(seed)
    for size in sizes:
        for kind in kinds:
            for index in range(per_kind):
                yield sample(kind, size, index, seed=seed, texts=texts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a corpus of camera frames to look at.")
    parser.add_argument("--out", type=Path, required=True, help="a directory (made if missing)")
    parser.add_argument("--per-kind", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    index = []
    for s in corpus(args.per_kind, seed=args.seed):
        name = s.label.replace("/", "-") + ".png"
        cv2.imwrite(str(args.out / name), s.gray)
        index.append({"file": name, "kind": s.kind, "module_px": round(s.module_px, 2)})
    (args.out / "index.json").write_text(json.dumps(index, indent=1))
    print(f"{len(index)} frames in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
