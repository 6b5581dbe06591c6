"""Asking the status authority (status-api.md): answers, the cache, and the transports."""
