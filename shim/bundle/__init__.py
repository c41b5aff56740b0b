"""The OCI bundle: reading and checking ``config.json``, and the effective configuration the
shim hands to the runtime (never written over the user's file)."""
