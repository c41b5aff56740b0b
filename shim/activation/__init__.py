"""Socket activation: passing systemd's ``LISTEN_FDS`` through to the container."""
