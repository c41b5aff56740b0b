"""Where the container's cgroup goes: below the shim's own when the shim runs in a systemd
unit or in a delegated cgroup, so that the unit's manager accounts for the container and
stops or kills every process of it.

``membership`` reads /proc/self/cgroup and the cgroup mounts (pure parsers); ``delegation``
decides whether the shim's cgroup is a unit's or delegated (small I/O); ``placement`` edits
``linux.cgroupsPath`` (pure) and prepares the cgroup file system before create (I/O).
Nothing here is imported unless the shim finds itself below a unit.
"""
