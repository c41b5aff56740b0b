"""Signals: which ones the shim forwards, which ones stop the container, how names parse,
and the thread that receives them all (``router``) without ever coalescing realtime ones."""
