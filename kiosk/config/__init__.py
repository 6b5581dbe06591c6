"""The kiosk's TOML configuration: schema, loading with every problem reported, and printing."""

from kiosk.config.load import Config, load_config

__all__ = ["Config", "load_config"]
