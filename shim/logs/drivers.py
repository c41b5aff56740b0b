"""Log driver specs, as conmon's ``--log-path`` takes them (pure).

``k8s-file:PATH``, a bare ``PATH`` (k8s-file too), ``journald`` (anything after a colon is
ignored), ``passthrough`` (the container gets the monitor's own stdio), ``none``, ``off``
or ``null`` (nothing). Several may be given: ``-l k8s-file:/a -l journald`` logs to both.
A leading colon means a path (``:/a`` is k8s-file at ``/a``), as in conmon.
"""

from __future__ import annotations

from shim.errors import ShimError
from shim.record import Record

K8S_FILE, JOURNALD, PASSTHROUGH = "k8s-file", "journald", "passthrough"
NOTHING = frozenset({"none", "off", "null"})


class LogDrivers(Record):
    """The drivers of one container."""

    __slots__ = ("k8s_file", "journald", "passthrough")

    def __init__(self, k8s_file: str | None = None, journald: bool = False, passthrough: bool = False) -> None:
        self.k8s_file = k8s_file  # the log file's path, if any
        self.journald = journald
        self.passthrough = passthrough


def parse_log_drivers(specs: list[str], log_tag: str | None = None) -> LogDrivers:
    """Every ``--log-path`` of a run; ShimError names a spec that is not a driver."""
    if not specs:
        raise ShimError("Log driver not provided. Use --log-path")
    drivers = LogDrivers()
    for spec in specs:
        driver, colon, path = spec.partition(":")
        if not driver and not path:
            raise ShimError("log-path must not be empty")
        if not driver:  # ":PATH"
            driver, path = K8S_FILE, path
        if driver in NOTHING:
            continue
        if driver == PASSTHROUGH:
            drivers.passthrough = True
        elif driver == JOURNALD:
            drivers.journald = True
        elif driver == K8S_FILE:
            if not path:
                raise ShimError("k8s-file requires a filename")
            drivers.k8s_file = path
        elif not colon:  # a bare path
            drivers.k8s_file = driver
        else:
            raise ShimError(f"No such log driver {driver}")
    if drivers.k8s_file and not drivers.journald and log_tag:
        raise ShimError("k8s-file doesn't support --log-tag")
    return drivers
