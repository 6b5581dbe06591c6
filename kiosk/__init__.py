"""Ashyq entrance kiosk: from a presented code to a decision, a turnstile and a record."""

__version__ = "0.1.0"
