"""What the shim will run (pure): decided from the bundle, the flags and the environment
before anything starts, then rendered into the effective configuration."""

from __future__ import annotations

from shim.bundle.config import Bundle
from shim.bundle.effective import rebase_on
from shim.bundle.json_lite import copy, dumps
from shim.errors import ShimError
from shim.notify.session import CONTAINER, add_container_socket, resolve_mode
from shim.signals.catalog import SIGRTMIN, SIGTERM, parse_signal
from shim.systemd.detect import systemd_mode

STOP_SIGNAL_ANNOTATION = "org.opencontainers.image.stopSignal"
NOTIFY_DIRECTORY = "notify"  # in the state directory


class Plan:
    __slots__ = ("config", "stop_signal", "own_pid_namespace", "systemd", "notify_mode", "host_notify_socket",
                 "activation", "has_shell", "cgroup_layout", "cgroup_parent", "terminal")

    def __init__(self, config: dict, stop_signal: int, own_pid_namespace: bool, systemd: bool = False,
                 notify_mode: str | None = None, host_notify_socket: str | None = None,
                 activation=None, has_shell: bool = True, cgroup_parent=None, terminal: bool = False) -> None:
        self.config = config
        self.stop_signal = stop_signal
        self.own_pid_namespace = own_pid_namespace
        self.systemd = systemd
        self.notify_mode = notify_mode
        self.host_notify_socket = host_notify_socket
        self.activation = activation
        self.has_shell = has_shell  # the root filesystem has /bin/sh
        self.cgroup_layout = "unified"  # the host's (shim.systemd.config), for systemd mode
        self.cgroup_parent = cgroup_parent  # the shim's unit's cgroup, for the container to go below
        self.terminal = terminal  # process.terminal: the shim's own terminal is the container's

    @property
    def passed_fds(self) -> tuple[int, ...]:
        """Fds the runtime must hand to the container at the same numbers."""
        return self.activation.fds if self.activation else ()

    @property
    def waits_for_signals_level(self) -> bool:
        """Only a systemd payload that can talk to us says when it accepts signals."""
        return self.systemd and self.notify_mode == CONTAINER

    def render(self, state_dir: str, container_id: str) -> tuple[dict, object]:
        """The configuration the runtime gets, with the shim's additions, and what the cgroup
        file system needs before create: the container's place below the shim's unit
        (shim.cgroups), and (systemd mode on cgroup v1 or hybrid hosts) the name=systemd
        cgroup to bind into the container."""
        config = copy(self.config)
        systemd_cgroup = placement = None
        # Features a run may not use are imported only when it does: start-up is a feature.
        if self.cgroup_parent is not None:
            from shim.cgroups.placement import place_container

            placement = place_container(config, container_id, self.cgroup_parent)
        if self.systemd:
            from shim.systemd.config import apply_systemd_mode

            systemd_cgroup = apply_systemd_mode(config, container_id, self.cgroup_layout)
        if self.notify_mode == CONTAINER:
            add_container_socket(config, f"{state_dir}/{NOTIFY_DIRECTORY}")
        if self.activation is not None:
            from shim.activation.listen_fds import hand_over

            hand_over(config, self.activation, self.own_pid_namespace, self.has_shell)
        if placement is not None:  # it prepares systemd mode's cgroup too
            placement.systemd_leaf, systemd_cgroup = systemd_cgroup, placement
        return config, systemd_cgroup


def render_bytes(config: dict) -> bytes:
    return dumps(config).encode()


def make_plan(bundle: Bundle, options, env: dict[str, str], own_pid: int) -> Plan:
    systemd = systemd_mode(options.systemd, bundle.args)
    host_notify_socket = env.get("NOTIFY_SOCKET") or None
    config = rebase_on(bundle.config, bundle.directory)
    return Plan(
        config=config,
        stop_signal=choose_stop_signal(options.stop_signal, bundle.annotations, systemd),
        own_pid_namespace=bundle.has_namespace("pid"),
        systemd=systemd,
        notify_mode=resolve_mode(options.sdnotify, systemd, host_notify_socket),
        host_notify_socket=host_notify_socket,
        activation=activation_for(env, own_pid),
        cgroup_parent=cgroup_parent_for(bundle, options.runtime_args, env, own_pid),
        terminal=bundle.terminal,
    )


def activation_for(env: dict[str, str], own_pid: int):
    """The sockets systemd passed to the shim, if any (see shim.activation)."""
    if "LISTEN_PID" not in env:
        return None
    from shim.activation.listen_fds import parse_activation, soft_fd_limit

    return parse_activation(env, own_pid, soft_fd_limit())


def cgroup_parent_for(bundle: Bundle, runtime_args: list[str], env: dict[str, str], own_pid: int):
    """The cgroup of the systemd unit the shim runs in (or a delegated one), for the
    container to go below it (see shim.cgroups); None elsewhere, where containers stay
    where the runtime puts them."""
    if "INVOCATION_ID" not in env and "SYSTEMD_EXEC_PID" not in env:
        return None  # no systemd unit above the shim: nothing to read, nothing to import
    from shim.cgroups.delegation import delegated_parent

    parent = delegated_parent(env, own_pid)
    if parent is None:
        return None
    from shim.cgroups.placement import placement_applies

    return parent if placement_applies(bundle.config, runtime_args) else None


def choose_stop_signal(flag: int | None, annotations: dict, systemd: bool) -> int:
    """``--stop-signal``, else the bundle's stop-signal annotation, else SIGRTMIN+3 for
    systemd (SIGTERM makes systemd re-execute, not stop), else SIGTERM."""
    if flag is not None:
        return flag
    annotated = annotations.get(STOP_SIGNAL_ANNOTATION)
    if isinstance(annotated, str) and annotated:
        try:
            return parse_signal(annotated)
        except ShimError as e:
            raise ShimError(f"bundle annotation {STOP_SIGNAL_ANNOTATION}: {e}") from None
    return SIGRTMIN + 3 if systemd else SIGTERM
