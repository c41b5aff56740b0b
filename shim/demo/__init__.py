"""``shim demo``: the main job on a built-in default, a busybox container."""
