"""What the shim will run (pure): the effective configuration and the stop policy, decided
from the bundle, the flags and the environment before anything starts."""

from __future__ import annotations

import json
import signal

from shim.bundle.config import Bundle
from shim.bundle.effective import rebase_on
from shim.signals.catalog import parse_signal

STOP_SIGNAL_ANNOTATION = "org.opencontainers.image.stopSignal"


class Plan:
    __slots__ = ("config", "stop_signal", "own_pid_namespace")

    def __init__(self, config: dict, stop_signal: int, own_pid_namespace: bool) -> None:
        self.config = config
        self.stop_signal = stop_signal
        self.own_pid_namespace = own_pid_namespace

    def config_bytes(self) -> bytes:
        return json.dumps(self.config, separators=(",", ":")).encode()


def make_plan(bundle: Bundle, options) -> Plan:
    config = rebase_on(bundle.config, bundle.directory)
    return Plan(
        config=config,
        stop_signal=choose_stop_signal(options.stop_signal, bundle.annotations),
        own_pid_namespace=bundle.has_namespace("pid"),
    )


def choose_stop_signal(flag: int | None, annotations: dict) -> int:
    """``--stop-signal``, else the bundle's stop-signal annotation, else SIGTERM."""
    if flag is not None:
        return flag
    annotated = annotations.get(STOP_SIGNAL_ANNOTATION)
    if isinstance(annotated, str) and annotated:
        return parse_signal(annotated)
    return signal.SIGTERM
