"""Benchmark the whole camera path on the realistic simulated feed; prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_camera.py [--seconds 8] [--count 30] [--sizes 480p,720p,1080p]

The feed (`simulators.camera_feed.SimFrameSource`) is as hard as a real entrance: a textured
scene, sensor noise, 100 Hz flicker, MJPG frames at 30 fps. For each resolution, the share
of one core (process CPU time from ``time.process_time``, not wall time: other programs load
the machine) and the CPU per frame of:

- the feed alone (a bare loop reading it: the simulator's own cost, subtracted below);
- merely reading the camera: each MJPG frame decoded to colour, what cv2.VideoCapture does
  for an MJPG camera by default, and nothing else. The baseline of the acceptance ratio;
- the camera path before issue 12 (colour decode in the capture thread, the motion gate
  with its "code-like" texture test, the decoder's old options) and after (MJPG kept
  compressed, a reduced greyscale decode per frame for the gate, a full gray decode only
  for frames the gate passes), idle (nobody in view) and active (a phone held up);
- after, with the idle pacer looking at one frame in 3 while resting (10 fps);

and the ratio "idle camera path / merely reading the camera". Then the latency from the
phone coming into view (the exposure start of the first frame showing it, so one frame of
exposure and transfer is included) to the `CodeRead`, over ``--count`` presentations.

``--video FILE`` measures a recorded video instead (an MJPG .avi of an empty entrance, read
at its frame rate as the kiosk reads a camera): cv2.VideoCapture reading it (decoding each
frame to colour, the baseline) against `CameraReader` on `OpenCVSource` of the same file.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.legacy_camera import DecodedColourSource, LegacyMotionGate  # noqa: E402
from drivers.camera import CameraReader  # noqa: E402  (the repo root is put on the path above)
from drivers.decoder import BEFORE_ISSUE_12, ZxingDecoder  # noqa: E402
from drivers.motion import MotionGate  # noqa: E402
from kiosk.gate.inputs import CodeRead, Event  # noqa: E402
from simulators.camera_feed import SimFrameSource  # noqa: E402
from simulators.issuer import PassIssuer  # noqa: E402

SIZES = {"480p": (640, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
FPS = 30.0


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Window:
    """Process CPU and frames over a measuring window."""

    def __init__(self, frames: Callable[[], int]) -> None:
        self._frames = frames
        self._cpu0, self._wall0, self._n0 = time.process_time(), time.monotonic(), frames()

    def close(self) -> tuple[float, int]:
        """(share of one core, frames in the window)."""
        cpu = time.process_time() - self._cpu0
        wall = time.monotonic() - self._wall0
        return cpu / wall, self._frames() - self._n0


def bare_loop(size: tuple[int, int], seconds: float, decode: bool) -> tuple[float, int]:
    """The feed read by a bare loop, each frame decoded to colour when ``decode``."""
    feed = SimFrameSource(*size, fps=FPS, seed=1)
    feed.open()
    stop = threading.Event()

    def capture() -> None:
        while not stop.is_set():
            frame = feed.read()
            if decode:
                cv2.imdecode(frame.data, cv2.IMREAD_COLOR)

    thread = threading.Thread(target=capture, daemon=True)
    thread.start()
    time.sleep(0.5)  # past start-up
    window = Window(lambda: feed.frames_served)
    time.sleep(seconds)
    result = window.close()
    stop.set()
    thread.join()
    feed.close()
    return result


def reader_for(feed: SimFrameSource, kind: str, emit: Callable[[Event], None]) -> CameraReader:
    if kind == "before":
        return CameraReader(
            DecodedColourSource(feed),
            decoder=ZxingDecoder(**BEFORE_ISSUE_12),
            gate=LegacyMotionGate(),  # type: ignore[arg-type]
        )
    idle_every = 3 if kind == "after, idle at 10 fps" else 1
    return CameraReader(feed, decoder=ZxingDecoder(), gate=MotionGate(), idle_every=idle_every)


def camera_path(
    size: tuple[int, int], kind: str, seconds: float, *, active: bool
) -> tuple[float, int, dict[str, int]]:
    """(share of one core, frames, counters) of the feed and a reader over the window."""
    feed = SimFrameSource(*size, fps=FPS, seed=1)
    reader = reader_for(feed, kind, lambda event: None)
    reader.start(lambda event: None)
    time.sleep(3.0)  # the gate has learnt the empty entrance, the idle pacer rests
    if active:
        feed.show(PassIssuer.load().mint("iin:921029350851", "green"), 10_000.0)
        time.sleep(0.5)
    before = reader.stats
    window = Window(lambda: feed.frames_served)
    time.sleep(seconds)
    share, frames = window.close()
    after = reader.stats
    reader.stop()
    counters = {
        name: getattr(after, name) - getattr(before, name)
        for name in ("frames_paced", "frames_gated", "frames_decoded", "frames_stale")
    }
    return share, frames, counters


def latency(size: tuple[int, int], kind: str, count: int) -> tuple[list[float], int]:
    """(milliseconds from in view to CodeRead, misses) over ``count`` presentations."""
    feed = SimFrameSource(*size, fps=FPS, seed=2)
    issuer = PassIssuer.load()
    firsts: dict[bytes, float] = {}
    lock = threading.Lock()

    def emit(event: Event) -> None:
        if isinstance(event, CodeRead):
            now = time.monotonic()
            with lock:
                firsts.setdefault(event.data, now)

    reader = reader_for(feed, kind, emit)
    reader.start(emit)
    time.sleep(1.0)
    texts = []
    for i in range(count):
        text = issuer.mint("iin:921029350851", "green")
        texts.append(text)
        feed.show(text, 0.6, inverted=i % 4 == 3)  # every fourth phone in dark mode
        # Shown, then longer than the idle pacer's hold (60 frames), so it rests again.
        time.sleep(0.6 + 2.6)
    reader.stop()
    times, misses = [], 0
    for text in texts:
        shown = feed.first_in_view_at(text)
        read = firsts.get(text.encode())
        if shown is None or read is None:
            misses += 1
        else:
            times.append((read - shown) * 1000)
    return times, misses


def video(path: str, seconds: float) -> None:
    """Idle CPU on a recorded video: merely reading it against the camera path."""
    from drivers.sources import OpenCVSource

    capture = cv2.VideoCapture(path)
    fps = capture.get(cv2.CAP_PROP_FPS) or FPS
    frames = [0]

    def paced_read() -> None:
        next_t = time.monotonic()
        while not stop.is_set():
            next_t += 1 / fps
            time.sleep(max(0.0, next_t - time.monotonic()))
            ok, _ = capture.read()
            if not ok:
                capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            frames[0] += 1

    stop = threading.Event()
    thread = threading.Thread(target=paced_read, daemon=True)
    thread.start()
    time.sleep(0.5)
    window = Window(lambda: frames[0])
    time.sleep(seconds)
    reading, n = window.close()
    stop.set()
    thread.join()
    capture.release()
    print(f"{path} at {fps:.0f} fps, {seconds:.0f} s windows")
    print(f"  merely reading it (cv2.VideoCapture, colour) {reading * 100:5.1f} %  ({n} frames)")
    source = OpenCVSource(path, fps=fps)
    reader = CameraReader(source, decoder=ZxingDecoder(), gate=MotionGate())
    reader.start(lambda event: None)
    time.sleep(3.0)
    before = reader.stats
    window = Window(lambda: reader.stats.frames_captured)
    time.sleep(seconds)
    share, n = window.close()
    after = reader.stats
    reader.stop()
    decoded = after.frames_decoded - before.frames_decoded
    print(
        f"  the camera path, idle                      {share * 100:5.1f} %  ({n} frames,"
        f" {decoded} decoded): x{share / reading:.2f} of reading"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring window")
    parser.add_argument("--count", type=int, default=30, help="presentations per latency run")
    parser.add_argument("--sizes", default="480p,720p,1080p")
    parser.add_argument("--video", help="measure a recorded MJPG video instead of the feed")
    args = parser.parse_args(argv)
    if args.video:
        video(args.video, args.seconds)
        return 0
    kinds = ("before", "after", "after, idle at 10 fps")

    for label in args.sizes.split(","):
        size = SIZES[label]
        print(f"\n{label} ({size[0]}x{size[1]}) at {FPS:.0f} fps, {args.seconds:.0f} s windows")
        feed_share, feed_frames = bare_loop(size, args.seconds, decode=False)
        read_share, read_frames = bare_loop(size, args.seconds, decode=True)
        feed_ms = feed_share * args.seconds * 1000 / max(1, feed_frames)
        baseline = read_share - feed_share
        print(f"  feed alone (subtracted below)          {feed_share * 100:5.1f} % of a core")
        print(
            f"  merely reading the camera (MJPG->BGR)  {baseline * 100:5.1f} %"
            f"  {baseline * args.seconds * 1000 / max(1, read_frames):5.2f} ms/frame"
        )
        for kind in kinds:
            for active in (False, True):
                if active and kind == "after, idle at 10 fps":
                    continue  # the same as "after" once something is in view
                share, frames, counters = camera_path(size, kind, args.seconds, active=active)
                own = share - feed_share
                per_frame = share * args.seconds * 1000 / max(1, frames) - feed_ms
                ratio = own / baseline if baseline > 0 else float("nan")
                state = "active" if active else "idle  "
                print(
                    f"  {kind:22s} {state} {own * 100:5.1f} %  {per_frame:5.2f} ms/frame"
                    f"  x{ratio:4.2f} of reading"
                    f"  ({counters['frames_decoded']} decoded, {counters['frames_gated']} gated,"
                    f" {counters['frames_paced']} paced, {counters['frames_stale']} stale"
                    f" of {frames})"
                )
        for kind in kinds:
            times, misses = latency(size, kind, args.count)
            if times:
                print(
                    f"  in view -> CodeRead, {kind:22s} {len(times)} read, {misses} missed;"
                    f" p50 {percentile(times, 0.5):5.1f} ms  p95 {percentile(times, 0.95):5.1f} ms"
                    f"  max {max(times):5.1f} ms  mean {statistics.fmean(times):5.1f} ms"
                )
            else:
                print(f"  in view -> CodeRead, {kind:22s} nothing read, {misses} missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
