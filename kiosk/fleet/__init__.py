"""The kiosk's link to the fleet over MQTT (mqtt.md): events, retained state, remote commands.

One :class:`~kiosk.fleet.link.MqttLink` (one broker connection, with failover) carries
everything: the :mod:`~kiosk.fleet.outbox`, the :mod:`~kiosk.fleet.state` publisher, the
:mod:`~kiosk.fleet.commands` receiver and the MQTT status lookups of :mod:`kiosk.status.mqtt`.
"""
