"""What a container may tell the host's service manager (pure, like h11).

One datagram is at most 4096 bytes (systemd's NOTIFY_BUFFER_MAX) of newline-separated
``KEY=VALUE`` lines. The relay forwards an allow-list and nothing else:

- ``READY=1``, ``RELOADING=1`` (with ``MONOTONIC_USEC=`` from the same datagram),
  ``STOPPING=1``, ``WATCHDOG=1``, ``WATCHDOG=trigger``;
- ``STATUS=`` (valid UTF-8, one line, no control characters), ``ERRNO=`` (a number),
  ``BUSERROR=`` (a D-Bus error name);
- ``WATCHDOG_USEC=`` and ``EXTEND_TIMEOUT_USEC=`` (numbers).

Never forwarded: ``MAINPID=`` (the shim is the main process; a container naming another
pid would take the unit over), ``MAINPIDFD*``, ``NOTIFYACCESS=``, ``FDSTORE*``, ``FDNAME=``,
``X_SYSTEMD_*``, and unknown keys (conmon's reasoning: they "may be security sensitive").
``X_SYSTEMD_SIGNALS_LEVEL=2`` is noted, because the stop sequence of a systemd payload
waits for it; so is ``READY=1``, which systemd before v254 sends without the level (it only
reports ready long after its signal handlers are in place). ``BARRIER=1``, alone in its
datagram with exactly one fd, is honoured by the caller: that fd is closed once every
earlier message went upstream. Every other fd that arrives is closed at once.
"""

from __future__ import annotations

NOTIFY_BUFFER_MAX = 4096

_EXACT = frozenset({"READY=1", "RELOADING=1", "STOPPING=1", "WATCHDOG=1", "WATCHDOG=trigger"})
_NUMERIC = frozenset({"ERRNO", "WATCHDOG_USEC", "EXTEND_TIMEOUT_USEC", "MONOTONIC_USEC"})
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
# What STATUS= may not hold (a tab may): checked by C code, not a Python loop per character,
# since every STATUS= a service sends passes here.
_CONTROL_CHARS = frozenset(map(chr, range(32))).union("\x7f").difference("\t")
_BUS_ERROR_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.")
FORWARDED_KEYS = frozenset({"READY", "RELOADING", "STOPPING", "WATCHDOG", "STATUS", "ERRNO", "BUSERROR",
                            "WATCHDOG_USEC", "EXTEND_TIMEOUT_USEC", "MONOTONIC_USEC"})
SIGNALS_LEVEL_READY = "X_SYSTEMD_SIGNALS_LEVEL=2"


class Verdict:
    """What to do with one datagram."""

    __slots__ = ("forward", "barrier", "signals_ready", "dropped")

    def __init__(self) -> None:
        self.forward: list[str] = []  # allowed lines, in their order
        self.barrier = False  # close the datagram's one fd after earlier messages went out
        self.signals_ready = False  # X_SYSTEMD_SIGNALS_LEVEL=2 (or READY=1) was seen
        self.dropped: list[str] = []  # why each line (or the whole datagram) was dropped

    def message(self) -> bytes | None:
        """The datagram to send upstream, if anything is left to send."""
        return "\n".join(self.forward).encode() if self.forward else None

    def __repr__(self) -> str:
        return (f"Verdict(forward={self.forward!r}, barrier={self.barrier}, "
                f"signals_ready={self.signals_ready}, dropped={self.dropped!r})")


def judge(data: bytes, fd_count: int = 0, truncated: bool = False) -> Verdict:
    """Decide what one datagram from the container becomes (pure, total: never raises)."""
    verdict = Verdict()
    if truncated or len(data) > NOTIFY_BUFFER_MAX:
        verdict.dropped.append(f"datagram over {NOTIFY_BUFFER_MAX} bytes or truncated")
        return verdict
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        verdict.dropped.append("datagram is not UTF-8")
        return verdict
    lines = list(filter(None, text.split("\n")))
    if "BARRIER=1" in lines:
        # systemd: BARRIER=1 must come alone, with exactly one fd; anything else voids it.
        if lines == ["BARRIER=1"] and fd_count == 1:
            verdict.barrier = True
        else:
            verdict.dropped.append("BARRIER=1 not alone with exactly one fd")
        return verdict
    reloading = "RELOADING=1" in lines
    verdict.signals_ready = "READY=1" in lines
    for line in lines:
        reason = _refusal(line, reloading)
        if reason is None:
            verdict.forward.append(line)
        else:
            if line == SIGNALS_LEVEL_READY:
                verdict.signals_ready = True
            verdict.dropped.append(reason)
    if fd_count and not verdict.barrier:
        verdict.dropped.append(f"{fd_count} fds closed (fd passing is not relayed)")
    return verdict


def _refusal(line: str, reloading: bool) -> str | None:
    """None if the line may go upstream, else why not."""
    key, has_equals, value = line.partition("=")
    if not has_equals or not key or not _KEY_CHARS.issuperset(key):
        return f"malformed line {_excerpt(line)}"
    if line in _EXACT:
        return None
    if key not in FORWARDED_KEYS:
        return f"{key}= is not relayed"
    if key == "STATUS":
        if not _CONTROL_CHARS.isdisjoint(value):
            return "STATUS= with control characters"
        return None
    if key in _NUMERIC:
        if not value.isascii() or not value.isdigit():
            return f"{key}= is not a number"
        if key == "MONOTONIC_USEC" and not reloading:
            return "MONOTONIC_USEC= without RELOADING=1"
        return None
    if key == "BUSERROR":
        return None if value and _BUS_ERROR_CHARS.issuperset(value) else "BUSERROR= is not a D-Bus error name"
    return f"{_excerpt(line)} is not a value systemd accepts"


def _excerpt(line: str) -> str:
    return repr(line[:40] + ("..." if len(line) > 40 else ""))


def shim_messages(event: str, pid: int, announce_status: bool) -> bytes:
    """The shim's own messages upstream (pure).

    ``event``: ``attached`` (the container runs and reports its own readiness: ``MAINPID``
    alone), ``running`` (the container runs and the shim reports readiness: ``READY=1``
    too) or ``stopping``. ``MAINPID`` makes the shim the unit's main process even when a
    wrapper started it, so the default ``NotifyAccess=main`` works.
    """
    if event == "attached":
        lines = [f"MAINPID={pid}"]
    elif event == "running":
        lines = [f"MAINPID={pid}", "READY=1"] + (["STATUS=running"] if announce_status else [])
    elif event == "stopping":
        lines = ["STOPPING=1"] + (["STATUS=stopping"] if announce_status else [])
    else:
        raise ValueError(event)
    return "\n".join(lines).encode()
