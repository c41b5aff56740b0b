"""``shim generate systemd``: service and socket units that run a container with the shim.

The rendering is pure (``render``, ``quoting``, ``listen``, ``options``); ``command`` does
the little I/O: it reads the bundle, finds the interpreter, the shim and the runtime, and
prints or writes the files. Nothing here is imported by ``shim run``.
"""
