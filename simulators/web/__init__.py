"""The simulated world's face on the kiosk's web server: the console's simulated world
(controls and camera view) and the `kiosk sim --web` bring-up."""

from simulators.web.controls import WorldControls

__all__ = ["WorldControls"]
