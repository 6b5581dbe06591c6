"""The display's speed and the web face's cost, in a real browser on `kiosk sim --web`.

    .venv/bin/python benchmarks/bench_display_browser.py [--n 50] [--idle-s 60] [--pages both]

1. Decision to screen: ``--n`` people with a red pass (each one a deny screen, then idle
   again) presented to the simulated camera; for each, the recorded decision event's time
   (``ts``, written by the controller right after it actuated) against the moment the
   display page's DOM showed the deny screen (a MutationObserver in the page noting
   ``Date.now()``: the same machine's clock). p50/p95/p99/max in milliseconds; display.md
   promises 200 ms.
2. Cost: with one display and one logged-in console connected and nobody at the gate, the
   simulation process's resident memory (/proc/PID/status VmRSS) and CPU (/proc/PID/stat
   utime+stime) over ``--idle-s`` seconds. The process is the whole simulation: the daemon
   (controller, drivers, web server) and the simulated world beside it (a 1280x720 camera
   at 30 fps, the status service), so the web face's own share is the difference against
   ``--pages none``; ``--pages display`` leaves the console out (its simulated camera view,
   a PNG twice a second, is the simulation's cost, not the kiosk's).

Needs Debian's chromium and Playwright (scripts/setup.sh). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # the repository and the browser helpers

from browser import CHROMIUM, SimProcess, chromium, kiosk_sim_web  # noqa: E402

SPACING_S = 0.8  # between people: longer than the deny light, so each gets a fresh screen
OBSERVER = """
() => {
  window.__marks = [];
  const main = document.getElementById("screen");
  new MutationObserver(() => {
    window.__marks.push({screen: main.dataset.screen, t: Date.now(), p: performance.now()});
  }).observe(main, {attributes: true, attributeFilter: ["data-screen"]});
}
"""


def bench_config(folder: Path) -> Path:
    """config/sim.toml with a short deny light, written where its key paths still resolve."""
    text = (REPO / "config" / "sim.toml").read_text().replace('"../', f'"{REPO}/')
    text = re.sub(r"(?m)^unlock_s = .*$", "unlock_s = 5\ndeny_light_s = 0.3", text)
    path = folder / "bench.toml"
    path.write_text(text)
    return path


def scenario(folder: Path, n: int, lead_s: float) -> Path:
    steps = "".join(
        f'\n[[step]]\nat = {lead_s + i * SPACING_S:.2f}\npresent = "pass"\nstatus = "red"\n'
        for i in range(n)
    )
    path = folder / "bench-scenario.toml"
    path.write_text(
        f'[scenario]\nname = "display bench"\nconfig = "{bench_config(folder)}"\nseed = 3\n' + steps
    )
    return path


def epoch_ms(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))]


def login(page: Any, sim: SimProcess) -> None:
    page.goto(sim.console_url)
    page.wait_for_selector("#login-form", state="visible")
    page.fill("#login-name", sim.account)
    page.fill("#login-password", sim.password)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#live", state="visible")


def decision_to_screen(sim: SimProcess, display: Any, n: int) -> list[float]:
    """Milliseconds from each deny event to the display's deny screen."""
    sim.wait_event(
        lambda e: e["type"] == "decision", since=0, timeout=n * SPACING_S + 30
    )  # the first person
    deadline = time.monotonic() + n * SPACING_S + 30
    while time.monotonic() < deadline:
        decisions = [e for e in sim.events if e["type"] == "decision"]
        if len(decisions) >= n:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # the last screen
    marks = [m for m in display.evaluate("window.__marks") if m["screen"] == "deny"]
    latencies = []
    for event in (e for e in sim.events if e["type"] == "decision"):
        at = epoch_ms(event["ts"])
        shown = next((m["t"] for m in marks if m["t"] >= at - 5), None)
        if shown is not None and shown - at < SPACING_S * 1000:
            latencies.append(shown - at)
    return latencies


def proc_sample(pid: int) -> tuple[float, float]:
    """(VmRSS in MiB, utime+stime in seconds) of ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = int(re.search(r"VmRSS:\s+(\d+)", status)[1])  # type: ignore[index]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat(5))
    return rss_kib / 1024, ticks / os.sysconf("SC_CLK_TCK")


def cost(pid: int, seconds: float) -> dict[str, float]:
    rss0, cpu0 = proc_sample(pid)
    t0 = time.monotonic()
    peak = rss0
    while time.monotonic() - t0 < seconds:
        time.sleep(1.0)
        rss, _ = proc_sample(pid)
        peak = max(peak, rss)
    rss1, cpu1 = proc_sample(pid)
    wall = time.monotonic() - t0
    return {"rss_start": rss0, "rss_end": rss1, "rss_peak": peak, "cpu": (cpu1 - cpu0) / wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50, help="people (deny screens) to time")
    parser.add_argument("--idle-s", type=float, default=60.0, help="seconds of cost sampling")
    parser.add_argument(
        "--pages",
        choices=("both", "display", "none"),
        default="both",
        help="pages connected while the cost is sampled (none: cost only, no browser)",
    )
    args = parser.parse_args()
    if not CHROMIUM.exists() and args.pages != "none":
        print(f"bench_display: no Chromium at {CHROMIUM}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-display-") as tmp:
        folder = Path(tmp)
        lead_s = 6.0  # the browser is up and watching before the first person comes
        steps = scenario(folder, args.n if args.pages != "none" else 0, lead_s)
        with kiosk_sim_web("--scenario", str(steps), state_dir=folder / "state") as sim:
            pid = sim.proc.pid
            if args.pages == "none":
                c = cost(pid, args.idle_s)
                print_cost(c, args.idle_s, "no page connected")
                return 0
            with chromium() as context:
                display = context.new_page()
                display.goto(sim.display_url)
                display.wait_for_selector('#screen[data-screen="idle"]')
                display.evaluate(OBSERVER)
                if args.pages == "both":
                    login(context.new_page(), sim)
                latencies = decision_to_screen(sim, display, args.n)
                if latencies:
                    print(
                        f"decision -> display ({len(latencies)} of {args.n} deny screens, "
                        f"event ts to DOM change): p50 {statistics.median(latencies):.0f} ms, "
                        f"p95 {pct(latencies, 95):.0f} ms, p99 {pct(latencies, 99):.0f} ms, "
                        f"max {max(latencies):.0f} ms"
                    )
                else:
                    print("decision -> display: no screen matched a decision")
                c = cost(pid, args.idle_s)
                what = "one display and one console" if args.pages == "both" else "one display"
                print_cost(c, args.idle_s, what + " connected")
    return 0


def print_cost(c: dict[str, float], seconds: float, what: str) -> None:
    print(
        f"kiosk sim process over {seconds:.0f} s, nobody at the gate, {what}: "
        f"RSS {c['rss_start']:.0f} -> {c['rss_end']:.0f} MiB (peak {c['rss_peak']:.0f}), "
        f"CPU {c['cpu'] * 100:.1f} % of one core"
    )


if __name__ == "__main__":
    sys.exit(main())
