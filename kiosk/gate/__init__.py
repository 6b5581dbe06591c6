"""The gate: the controller that owns its state, and the one observable view of it."""
