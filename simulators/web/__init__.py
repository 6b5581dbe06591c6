"""The simulated world's face on the kiosk's web server: its controls and its camera view."""

from simulators.web.routes import register_sim_routes

__all__ = ["register_sim_routes"]
