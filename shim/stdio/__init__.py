"""The container's stdout and stderr: pipes the shim relays to its own stdout and stderr."""
