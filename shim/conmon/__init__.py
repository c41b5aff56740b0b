"""The conmon-compatible front: podman (and CRI-O) run the shim as their container
monitor. ``options`` is conmon's command line, ``sync_pipe`` the engine's pipes and their
JSON, ``daemon`` the start pipe and the double fork, ``monitor`` the table of contents of
one monitored container. The lifecycle, reaper, output path and notify relay are the same
as ``shim run``'s; this front only decides policy (see ``monitor``)."""
