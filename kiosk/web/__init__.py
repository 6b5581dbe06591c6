"""The kiosk's web server: the traveller display, the technician console, metrics (display.md)."""
