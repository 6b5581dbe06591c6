"""Benchmark the camera path on the simulated feed; prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_camera.py [--idle-s 10] [--count 100] [--decoder zxing]

For 640x480 and 1280x720 at 30 fps:

- idle CPU: the share of one core used by `CameraReader` (zxing decoder, motion gate) and
  `SimFrameSource` together while nobody stands at the kiosk, and by the feed alone, from
  ``time.process_time`` deltas over ``--idle-s`` seconds; the reader's share is the
  difference;
- latency: from the first frame showing a code (its ``read()`` return time) to the
  `CodeRead` for it reaching ``emit``, p50/p95/p99 over ``--count`` presentations of
  freshly minted signed passes (0.4 s shown, 0.3 s gap). A presentation not read while
  shown counts as a miss, not as a latency.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from drivers.camera import CameraReader  # noqa: E402  (the repo root is put on the path above)
from drivers.decoder import MotionGate, make_decoder  # noqa: E402
from kiosk.events import CodeRead, Event  # noqa: E402
from simulators.camera_feed import SimFrameSource  # noqa: E402
from simulators.issuer import PassIssuer  # noqa: E402

SIZES = ((640, 480), (1280, 720))
FPS = 30.0
SHOWN_S = 0.4
GAP_S = 0.3


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_share(seconds: float) -> float:
    """Share of one core this process used over the next ``seconds`` (0.25 = 25 %)."""
    wall0, cpu0 = time.monotonic(), time.process_time()
    time.sleep(seconds)
    return (time.process_time() - cpu0) / (time.monotonic() - wall0)


def feed_alone(size: tuple[int, int], seconds: float) -> tuple[float, int]:
    """(CPU share, frames) of the feed read by a bare loop: the simulator's own cost."""
    feed = SimFrameSource(*size, fps=FPS, seed=1)
    feed.open()
    stop = threading.Event()

    def capture() -> None:
        while not stop.is_set():
            feed.read()

    thread = threading.Thread(target=capture, daemon=True)
    thread.start()
    time.sleep(0.5)  # past start-up
    start_frames = feed.frames_served
    share = cpu_share(seconds)
    frames = feed.frames_served - start_frames
    stop.set()
    thread.join()
    feed.close()
    return share, frames


def idle_reader(size: tuple[int, int], decoder: str, seconds: float) -> tuple[float, dict]:
    """(CPU share, counters over the window) of the reader and the feed, nobody shown."""
    feed = SimFrameSource(*size, fps=FPS, seed=1)
    reader = CameraReader(feed, decoder=make_decoder(decoder), gate=MotionGate())
    reader.start(lambda event: None)
    time.sleep(0.5)
    before = reader.stats
    share = cpu_share(seconds)
    after = reader.stats
    reader.stop()
    counters = {
        "captured": after.frames_captured - before.frames_captured,
        "gated": after.frames_gated - before.frames_gated,
        "decoded": after.frames_decoded - before.frames_decoded,
        "stale": after.frames_stale - before.frames_stale,
    }
    return share, counters


def latency(size: tuple[int, int], decoder: str, count: int) -> tuple[list[float], int, dict]:
    """(latencies in ms, misses, final counters) over ``count`` presentations."""
    feed = SimFrameSource(*size, fps=FPS, seed=2)
    issuer = PassIssuer.load()
    firsts: dict[bytes, float] = {}
    lock = threading.Lock()

    def emit(event: Event) -> None:
        if isinstance(event, CodeRead):
            now = time.monotonic()
            with lock:
                firsts.setdefault(event.data, now)

    reader = CameraReader(feed, decoder=make_decoder(decoder), gate=MotionGate())
    reader.start(emit)
    time.sleep(0.5)
    texts = []
    for i in range(count):
        text = issuer.mint("iin:921029350851", "green")
        texts.append(text)
        feed.show(text, SHOWN_S, inverted=i % 4 == 3)  # every fourth phone in dark mode
        time.sleep(SHOWN_S + GAP_S)
    time.sleep(0.5)
    reader.stop()
    latencies, misses = [], 0
    for text in texts:
        shown = feed.first_shown_at(text)
        read = firsts.get(text.encode())
        if shown is None or read is None:
            misses += 1
        else:
            latencies.append((read - shown) * 1000)
    return latencies, misses, reader.stats.as_dict()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-s", type=float, default=10.0, help="idle window per measure")
    parser.add_argument("--count", type=int, default=100, help="presentations per resolution")
    parser.add_argument("--decoder", default="zxing", choices=("zxing", "pyzbar"))
    args = parser.parse_args(argv)

    for size in SIZES:
        label = f"{size[0]}x{size[1]} @ {FPS:.0f} fps"
        feed_share, frames = feed_alone(size, args.idle_s)
        both_share, counters = idle_reader(size, args.decoder, args.idle_s)
        print(f"{label}: idle CPU (share of one core over {args.idle_s:.0f} s)")
        print(f"  feed alone           {feed_share * 100:5.1f} %  ({frames / args.idle_s:.1f} fps)")
        print(f"  reader + feed        {both_share * 100:5.1f} %")
        print(f"  reader (difference)  {(both_share - feed_share) * 100:5.1f} %")
        print(
            f"  frames: {counters['captured']} captured, {counters['gated']} skipped by the gate,"
            f" {counters['decoded']} decoded, {counters['stale']} stale"
        )
        times, misses, stats = latency(size, args.decoder, args.count)
        print(f"{label}: first frame showing a code -> CodeRead ({args.decoder})")
        if times:
            print(
                f"  {len(times)} read, {misses} missed;"
                f" p50 {percentile(times, 0.5):.1f} ms, p95 {percentile(times, 0.95):.1f} ms,"
                f" p99 {percentile(times, 0.99):.1f} ms, max {max(times):.1f} ms,"
                f" mean {statistics.fmean(times):.1f} ms"
            )
        else:
            print(f"  nothing read, {misses} missed")
        decoded = stats["frames_decoded"]
        mean_decode = stats["decode_s_total"] / decoded * 1000 if decoded else 0.0
        print(
            f"  frames: {stats['frames_captured']} captured, {stats['frames_gated']} gated,"
            f" {decoded} decoded ({mean_decode:.1f} ms mean), {stats['frames_stale']} stale"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
