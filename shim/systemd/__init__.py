"""systemd mode: recognising a systemd payload and giving it what it needs to boot and halt."""
