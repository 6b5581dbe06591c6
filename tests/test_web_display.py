"""The display's screens (display.md): every row of its gate-state and reason tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from kiosk.gate.view import HEALTH_PARTS, GateSnapshot, GateView, LastDecision
from kiosk.policy import VenuePolicy, Window
from kiosk.reasons import Reason
from kiosk.report.glossary import LANGS, glossary
from kiosk.web.display import CHECKING_AFTER_S, DisplaySettings, Screens, next_opening

T = 1_800_000_000.0  # the decisions' epoch time in these tests
G = glossary()


def health(**parts: str):
    states = dict.fromkeys(HEALTH_PARTS, "ok") | parts
    return MappingProxyType(states)


def snap(**kw) -> GateSnapshot:
    kw.setdefault("health", health())
    return GateSnapshot(version=7, **kw)


def decided(decision: str, reason: str, *, holder: str | None = "92********51") -> GateSnapshot:
    light = {"admit": "admit", "deny": "deny", "refer": "refer"}[decision]
    last = LastDecision(decision, reason, "green", "online", "camera", 12.0, T, holder, 5)
    return snap(light=light, last_decision=last)


def keys(screen) -> list[str]:
    return [line["key"] for line in screen["lines"]]


@pytest.fixture
def screens() -> Screens:
    return Screens(G)


def test_idle_shows_the_qr_glyph_and_show_code_in_every_language(screens):
    s = screens.screen(snap(light="idle"), T)
    assert (s["screen"], s["icon"], s["colour"], s["flash"]) == ("idle", "qr", "neutral", False)
    assert keys(s) == ["show_code"]
    assert s["lines"][0]["text"] == G.messages["show_code"]
    assert s["langs"] == ["kk", "ru", "en"] and s["holder"] is None and s["until"] is None
    assert s["version"] == 7 and s["offline"] is False


def test_idle_offline_has_the_offline_banner(screens):
    s = screens.screen(snap(light="idle_offline", offline=True), T)
    assert s["screen"] == "idle" and keys(s) == ["show_code", "offline"] and s["offline"]


def test_checking_shows_only_after_150_ms(screens):
    running = snap(checking=True, checking_since=T)
    assert screens.screen(running, T + 0.149)["screen"] == "idle"
    assert screens.next_change(running, T + 0.1) == pytest.approx(0.05, abs=1e-5)
    s = screens.screen(running, T + CHECKING_AFTER_S)
    assert (s["screen"], s["icon"], s["colour"], keys(s)) == (
        "checking",
        "spinner",
        "neutral",
        ["checking"],
    )


def test_the_view_notes_when_checking_began_and_forgets_it_after():
    now = [T]
    view = GateView(now=lambda: now[0])
    assert view.publish(checking=True).checking_since == T
    now[0] += 1
    assert view.publish(light="idle").checking_since == T  # still the same lookup
    assert view.publish(checking=False).checking_since is None
    assert view.publish(checking=True, checking_since=T - 5).checking_since == T - 5


def test_admit_shows_admitted_welcome_and_the_masked_holder_while_the_light_does(screens):
    s = screens.screen(decided("admit", "admitted"), T + 1)
    assert (s["screen"], s["icon"], s["colour"]) == ("admit", "check", "green")
    assert keys(s) == ["admitted", "welcome"]
    assert s["holder"] == "92********51"
    assert s["until"] == T + 5.0  # [gate] unlock_s: the window at most


def test_the_result_ends_with_the_light(screens):
    admitted = decided("admit", "admitted")
    back = snap(light="idle", last_decision=admitted.last_decision)
    assert screens.screen(back, T + 1)["screen"] == "idle"
    # A light that somehow stayed on: the result still does not outlast its time.
    assert screens.screen(admitted, T + 7)["screen"] == "idle"
    assert screens.next_change(admitted, T + 1) == pytest.approx(5.0)


def test_a_light_for_another_decision_never_shows_the_last_persons_result(screens):
    denied = decided("deny", "expired")
    s = screens.screen(snap(light="admit", last_decision=denied.last_decision), T)
    assert s["screen"] == "idle" and s["holder"] is None


# display.md, "Reason lines": reason -> (key, see_staff).
DENY_ROWS = {
    "status_not_allowed": ("status_not_allowed", False),
    "unknown_subject": ("unknown_subject", True),
    "invalid_payload": ("not_recognised", False),
    "invalid_iin": ("not_recognised", False),
    "bad_signature": ("not_recognised", False),
    "untrusted_key": ("not_recognised", False),
    "expired": ("expired", False),
    "not_yet_valid": ("not_yet_valid", False),
    "replayed": ("replayed", True),
    "backend_unavailable": ("unavailable", True),
    "clock_untrusted": ("unavailable", True),
    "venue_full": ("venue_full", False),
    "anti_passback": ("anti_passback", True),
}


@pytest.mark.parametrize("reason", list(DENY_ROWS))
def test_deny_shows_the_reasons_line_and_see_staff_where_the_table_says(screens, reason):
    key, staff = DENY_ROWS[reason]
    s = screens.screen(decided("deny", reason), T + 0.5)
    assert (s["screen"], s["icon"], s["colour"]) == ("deny", "cross", "red")
    assert keys(s) == ([key, "see_staff"] if staff else [key])
    assert s["lines"][0]["text"] == G.messages[key]
    assert s["until"] == T + 2.0  # [gate] deny_light_s


@pytest.mark.parametrize("reason", list(DENY_ROWS))
def test_refer_shows_the_reasons_line_and_always_see_staff(screens, reason):
    key, _ = DENY_ROWS[reason]
    s = screens.screen(decided("refer", reason), T + 0.5)
    assert (s["screen"], s["icon"], s["colour"]) == ("refer", "hand", "amber")
    assert keys(s) == [key, "see_staff"]
    assert s["until"] == T + 3.0  # [gate] refer_light_s


def test_every_reason_of_the_kiosk_is_in_the_table():
    as_mode = {"closed", "lockdown", "emergency", "admitted"}
    assert {r.value for r in Reason} - as_mode == set(DENY_ROWS)


@pytest.mark.parametrize("reason", ["closed", "lockdown", "emergency"])
def test_the_mode_reasons_show_the_modes_screen(screens, reason):
    s = screens.screen(decided("deny", reason), T)
    assert s["screen"] == reason and s["holder"] is None


def test_an_unknown_reason_still_shows_a_deny_with_see_staff(screens):
    s = screens.screen(decided("deny", "from_a_newer_kiosk"), T)
    assert s["screen"] == "deny" and keys(s) == ["see_staff"]


def test_emergency_flashes_the_exit_sign_over_everything(screens):
    s = screens.screen(snap(mode="emergency", health=health(relay="down")), T)
    assert (s["screen"], s["icon"], s["colour"], s["flash"]) == ("emergency", "exit", "amber", True)
    assert keys(s) == ["emergency"]


def test_lockdown_shows_the_padlock(screens):
    s = screens.screen(snap(mode="lockdown", light="locked"), T)
    assert (s["screen"], s["icon"], s["colour"], keys(s)) == (
        "lockdown",
        "padlock",
        "red",
        ["lockdown"],
    )


def test_closed_shows_the_clock_and_the_opening_time_when_known():
    policy = VenuePolicy(hours=(Window(frozenset(range(7)), 6 * 60, 23 * 60),), timezone="UTC")
    night = datetime(2027, 1, 13, 23, 30, tzinfo=UTC).timestamp()
    screens = Screens(G, opening=lambda now: next_opening(policy, now))
    s = screens.screen(snap(mode="closed", light="locked"), night)
    assert (s["screen"], s["icon"], s["colour"]) == ("closed", "clock", "red")
    assert keys(s) == ["closed", "opens_at"]
    assert s["lines"][1]["text"]["en"] == "Opens at 06:00"
    assert s["lines"][1]["text"]["ru"] == "Откроется в 06:00"
    assert keys(Screens(G).screen(snap(mode="closed"), night)) == ["closed"]


def test_next_opening_is_local_time_within_a_day_or_nothing():
    weekdays = Window(frozenset(range(5)), 9 * 60, 18 * 60)
    policy = VenuePolicy(hours=(weekdays,), timezone="Asia/Almaty")
    friday_night = datetime(2027, 1, 15, 20, 0, tzinfo=UTC).timestamp()  # sat 01:00 local
    assert next_opening(policy, friday_night) is None  # monday: more than a day away
    thursday_night = datetime(2027, 1, 14, 20, 0, tzinfo=UTC).timestamp()
    assert next_opening(policy, thursday_night) == "09:00"
    assert next_opening(VenuePolicy(), thursday_night) is None  # always open


@pytest.mark.parametrize(
    "parts",
    [
        {"relay": "down"},
        {"camera": "down", "scanner": "down"},
        {"camera": "down", "scanner": "off"},
        {"camera": "off", "scanner": "down"},
    ],
)
def test_out_of_order_when_a_device_the_gate_needs_is_down(screens, parts):
    s = screens.screen(snap(health=health(**parts)), T)
    assert (s["screen"], s["icon"], s["colour"], keys(s)) == (
        "out_of_order",
        "warning",
        "grey",
        ["out_of_order", "see_staff"],
    )


@pytest.mark.parametrize(
    "parts",
    [
        {"camera": "down", "scanner": "ok"},  # one reader left
        {"camera": "off", "scanner": "off"},  # no reader: a bench, nothing is gone
        {"status": "down", "broker": "down", "disk": "down"},  # offline rules decide
    ],
)
def test_not_out_of_order_while_the_gate_can_still_read(screens, parts):
    assert screens.screen(snap(health=health(**parts)), T)["screen"] == "idle"


def test_the_configured_readers_decide_which_ones_count():
    camera_only = Screens(G, DisplaySettings(readers=("camera",)))
    down = snap(health=health(camera="down", scanner="ok"))
    assert camera_only.screen(down, T)["screen"] == "out_of_order"
    assert Screens(G, DisplaySettings(readers=())).screen(down, T)["screen"] == "idle"


def test_out_of_order_outranks_closed_and_results_but_not_the_modes(screens):
    broken = health(relay="down")
    assert screens.screen(snap(mode="closed", health=broken), T)["screen"] == "out_of_order"
    admitted = decided("admit", "admitted")
    s = screens.screen(snap(light="admit", last_decision=admitted.last_decision, health=broken), T)
    assert s["screen"] == "out_of_order" and s["holder"] is None
    assert screens.screen(snap(mode="lockdown", health=broken), T)["screen"] == "lockdown"


def test_the_next_persons_check_replaces_the_last_result(screens):
    admitted = decided("admit", "admitted")
    both = snap(
        light="admit", last_decision=admitted.last_decision, checking=True, checking_since=T + 1
    )
    assert screens.screen(both, T + 1.1)["screen"] == "admit"
    assert screens.screen(both, T + 1.2)["screen"] == "checking"


def test_the_holder_can_be_switched_off_and_only_the_masked_form_is_ever_shown():
    off = Screens(G, DisplaySettings(show_holder=False))
    assert off.screen(decided("admit", "admitted"), T)["holder"] is None
    on = Screens(G)
    assert on.screen(decided("deny", "expired", holder="DEU C0*****47"), T)["holder"] == (
        "DEU C0*****47"
    )
    for leak in ("921029350851", "iin:921029350851", "Aigerim Nurlanovna", "eyJhbGciOi"):
        assert on.screen(decided("admit", "admitted", holder=leak), T)["holder"] is None


def test_lines_follow_the_configured_languages_and_order():
    screens = Screens(G, DisplaySettings(langs=("en", "kk")))
    s = screens.screen(decided("deny", "expired"), T)
    assert s["langs"] == ["en", "kk"]
    assert list(s["lines"][0]["text"]) == ["en", "kk"]


def test_a_venues_own_lines_replace_the_catalogues():
    venue = G.with_overrides(
        {"en": {"show_code": "Show your pass"}, "ru": {"opens_at": "С {time}"}}
    )
    s = Screens(venue).screen(snap(), T)
    assert s["lines"][0]["text"] == {**G.messages["show_code"], "en": "Show your pass"}
    assert venue.text("opens_at", "ru", time="06:00") == "С 06:00"
    assert G.messages["show_code"]["en"] == "Show your QR code"  # the catalogue is untouched


def test_every_screen_is_one_line_of_json_without_a_subject(screens):
    subject = "iin:921029350851"
    last = LastDecision("admit", "admitted", "green", "online", "camera", 1.0, T, "92********51")
    s = screens.screen(snap(light="admit", last_decision=last), T)
    text = json.dumps(s, ensure_ascii=False)
    assert "\n" not in text and "921029350851" not in text and subject not in text
    for lang in LANGS:
        assert s["lines"][0]["text"][lang]


def test_the_lost_screen_is_out_of_order_in_the_configured_languages():
    s = Screens(G, DisplaySettings(langs=("ru",))).lost()
    assert s["screen"] == "out_of_order" and s["langs"] == ["ru"]
    assert keys(s) == ["out_of_order", "see_staff"]


def test_every_message_of_the_catalogue_is_on_some_screen(screens):
    shown: set[str] = set()
    snaps = [
        snap(),
        snap(offline=True),
        snap(checking=True, checking_since=T - 1),
        snap(mode="emergency"),
        snap(mode="lockdown"),
        snap(mode="closed"),
        snap(health=health(relay="down")),
        decided("admit", "admitted"),
        *(decided("deny", reason) for reason in DENY_ROWS),
        *(decided("refer", reason) for reason in DENY_ROWS),
    ]
    for s in snaps:
        shown |= set(keys(screens.screen(s, T)))
    assert shown == set(G.messages)
