"""``LISTEN_FDS`` pass-through (the rules are pure; ``check_open`` looks at the fds).

A socket-activated unit starts the shim with listening sockets at fds 3.. and
``LISTEN_FDS=N``, ``LISTEN_PID=<shim pid>``, maybe ``LISTEN_FDNAMES``. The container's
process must receive them as if systemd had started it: the same fd numbers (the runtime's
``--preserve-fds N``), ``LISTEN_FDS=N``, ``LISTEN_FDNAMES`` unchanged, and ``LISTEN_PID``
set to the pid the payload will have, because ``sd_listen_fds()`` ignores the variables
otherwise. In its own pid namespace the payload is pid 1 (what podman sets too). In the
host's pid namespace its pid is only known after ``runtime create``, when its environment is
already fixed, so the payload is started through ``/bin/sh -c 'LISTEN_PID=$$ exec "$@"'``:
exec keeps the pid. ``LISTEN_PIDFDID`` names the shim's pidfd and is dropped.

As ``sd_listen_fds()`` does, the variables are ignored when ``LISTEN_PID`` is absent or
names another process. When they are meant for the shim but wrong, the run fails before
anything starts, naming the variable.
"""

from __future__ import annotations

import os

from shim.bundle.effective import set_env
from shim.errors import ShimError

LISTEN_FDS_START = 3  # SD_LISTEN_FDS_START
PID_WRAPPER = ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', "sh"]


class Activation:
    """``count`` fds from fd 3, with systemd's names for them (or None)."""

    __slots__ = ("count", "names")

    def __init__(self, count: int, names: str | None) -> None:
        self.count = count
        self.names = names

    @property
    def fds(self) -> tuple[int, ...]:
        return tuple(range(LISTEN_FDS_START, LISTEN_FDS_START + self.count))


def parse_activation(env: dict[str, str], own_pid: int, fd_limit: int) -> Activation | None:
    """The fds systemd passed to the shim, or None if none were meant for it (pure)."""
    pid_text = env.get("LISTEN_PID")
    if pid_text is None:
        return None
    if not pid_text.isascii() or not pid_text.isdigit() or int(pid_text) <= 0:
        raise ShimError(f"LISTEN_PID={pid_text!r} is not a pid")
    if int(pid_text) != own_pid:
        return None
    count_text = env.get("LISTEN_FDS")
    if count_text is None:
        return None  # sd_listen_fds(): no LISTEN_FDS, no fds
    if not count_text.isascii() or not count_text.isdigit() or int(count_text) <= 0:
        raise ShimError(f"LISTEN_FDS={count_text!r} is not a positive integer")
    count = int(count_text)
    if LISTEN_FDS_START + count > fd_limit:
        raise ShimError(f"LISTEN_FDS={count} would need fds up to {LISTEN_FDS_START + count - 1}, "
                        f"beyond the fd limit ({fd_limit})")
    return Activation(count, env.get("LISTEN_FDNAMES"))


def soft_fd_limit() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def check_open(activation: Activation) -> None:
    """Every passed fd must be open in the shim."""
    for fd in activation.fds:
        try:
            os.fstat(fd)
        except OSError:
            raise ShimError(f"LISTEN_FDS={activation.count}, but fd {fd} is not open") from None


def hand_over(config: dict, activation: Activation, own_pid_namespace: bool, has_shell: bool) -> None:
    """Give the container's process the activation environment (pure edit of ``config``);
    ``has_shell``: the root filesystem has a /bin/sh."""
    process = config["process"]
    process["env"] = [e for e in process.get("env", []) if not e.startswith("LISTEN_")]
    set_env(config, "LISTEN_FDS", str(activation.count))
    if activation.names is not None:
        set_env(config, "LISTEN_FDNAMES", activation.names)
    if own_pid_namespace:
        set_env(config, "LISTEN_PID", "1")
    else:
        if not has_shell:
            raise ShimError("LISTEN_FDS: the container shares the host's pid namespace and has no /bin/sh, "
                            "so its process cannot learn the pid to put in LISTEN_PID")
        process["args"] = PID_WRAPPER + list(process["args"])
