"""The whole daemon on its fleet link: MQTT status lookups, events, retained state and a
signed command, against a real mosquitto, watched by an outside client."""

from __future__ import annotations

import json
import threading

from kiosk.config import load_config
from kiosk.daemon import Daemon
from mqtt_support import Observer
from simulators.command_signer import sign_command
from simulators.mqtt_responder import MqttStatusResponder
from simulators.world import World
from support import SIM_KEYS, write_config

PREFIX = "ashyq/v1"


def test_a_kiosk_on_the_fleet_link(tmp_path, mosquitto, population):
    cfg = load_config(
        write_config(
            tmp_path,
            None,
            kiosk={"id": "k1", "venue_id": "v1"},
            status={"backend": "mqtt"},
            mqtt={"enabled": True, "brokers": [mosquitto.url]},
            operators={"keys_file": str(SIM_KEYS / "operators.jwks.json")},
            gpio={"pin_factory": "mock"},
            scanner={"enabled": True},
        )
    )
    watcher = Observer(mosquitto, f"{PREFIX}/kiosk/k1/#")
    world = World(cfg)
    cfg = world.simulated(cfg, state_dir=tmp_path / "state")
    events_topic, state_topic = f"{PREFIX}/kiosk/k1/events", f"{PREFIX}/kiosk/k1/state"
    with MqttStatusResponder(population, broker_url=mosquitto.url, prefix=PREFIX):
        daemon = Daemon(cfg, sim=world.hardware())
        runner = threading.Thread(target=daemon.run)
        runner.start()
        try:
            watcher.wait_for(lambda ps: any(json.loads(p).get("online") for p in ps), state_topic)
            person = next(p for p in population.with_status("green") if p.sub.startswith("iin:"))
            world.turnstile.expect_walk(0.05)
            world.scanner.scan(person.sub[4:])

            def decisions(payloads):
                return [json.loads(p) for p in payloads if b'"decision"' in p]

            [decision] = watcher.wait_for(decisions, events_topic)
            assert (decision["decision"], decision["via"]) == ("admit", "online")
            watcher.wait_for(lambda ps: any(b'"passage"' in p for p in ps), events_topic)

            token = sign_command("lockdown", aud="k1")
            watcher.publish(f"{PREFIX}/kiosk/k1/command", token.encode())
            result = watcher.wait_for(
                lambda ps: [json.loads(p) for p in ps], f"{PREFIX}/kiosk/k1/command/result"
            )[0]
            assert result["ok"] is True
            watcher.wait_for(
                lambda ps: any(json.loads(p).get("mode") == "lockdown" for p in ps), state_topic
            )
            watcher.publish(f"{PREFIX}/kiosk/k1/command", token.encode())  # replayed
            watcher.wait_for(
                lambda ps: any(json.loads(p).get("error") == "replayed" for p in ps),
                f"{PREFIX}/kiosk/k1/command/result",
            )
        finally:
            daemon.stop()
            runner.join(15)
            world.close()
    watcher.wait_for(lambda ps: json.loads(ps[-1]) == {"online": False}, state_topic)
    events = [json.loads(p) for p in watcher.payloads(events_topic)]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)) and seqs[0] == 1  # in order, from the first
    assert {e["type"] for e in events} >= {"mode", "decision", "passage", "command"}
    refused = [e for e in events if e["type"] == "command" and not e["ok"]]
    assert refused and refused[0]["error"] == "replayed"
    # Never an ID in what the kiosk publishes about itself (the lookup's own request and
    # response carry the subject by design, status-api.md, like the HTTP body does).
    wire = b"\n".join(watcher.payloads(events_topic) + watcher.payloads(state_topic))
    assert person.sub[4:].encode() not in wire
    watcher.close()
