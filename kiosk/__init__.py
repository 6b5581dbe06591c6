"""Ashyq entrance kiosk: from a presented code to a decision, a turnstile and a record."""

from importlib.metadata import PackageNotFoundError, version

try:
    # Set at build time from the git tag (setuptools-scm), read from the installed metadata.
    __version__ = version("ashyq-kiosk")
except PackageNotFoundError:  # a checkout on sys.path that was never pip-installed
    __version__ = "0.0.0+unknown"
