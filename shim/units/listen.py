"""``--socket ADDR``: what the socket unit listens on (pure).

Stream sockets only, in the forms systemd's ``ListenStream=`` takes and a user means
literally: a port (every address), ``IPv4:PORT``, ``[IPv6]:PORT``, an absolute path (a unix
socket) or ``@name`` (an abstract unix socket). Anything else is refused here, where the
mistake is made, rather than by systemd when the unit is loaded.
"""

from __future__ import annotations

from shim.errors import UsageError
from shim.units.quoting import check_one_line, literal

MAX_PORT = 65535
SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes, one of them the terminating NUL
FORMS = "PORT, IPv4:PORT, [IPv6]:PORT, /path or @name"


def listen_stream(address: str) -> str:
    """The ``ListenStream=`` value for ``--socket address``, or UsageError."""
    check_one_line(address, "--socket")
    if address.startswith(("/", "@")):
        if len(address.encode()) > SUN_PATH_MAX:
            raise UsageError(f"--socket {address}: longer than a unix socket path may be ({SUN_PATH_MAX} bytes)")
        if address.startswith("/") and "\0" in address:
            raise UsageError(f"--socket {address}: not a valid path")
        if address == "@":
            raise UsageError("--socket @: an abstract socket needs a name")
        return literal(address)
    if address.isascii() and address.isdigit():
        return str(_port(address, address))
    host, colon, port = address.rpartition(":")
    if not colon or not host:
        raise UsageError(f"--socket {address}: not one of {FORMS}")
    if host.startswith("[") and host.endswith("]"):
        from ipaddress import IPv6Address

        try:
            IPv6Address(host[1:-1])
        except ValueError:
            raise UsageError(f"--socket {address}: {host[1:-1]!r} is not an IPv6 address") from None
    else:
        from ipaddress import IPv4Address

        try:
            IPv4Address(host)
        except ValueError:
            raise UsageError(f"--socket {address}: {host!r} is not an IPv4 address "
                             "(write IPv6 addresses in brackets: [::1]:8080)") from None
    return f"{host}:{_port(port, address)}"


def _port(text: str, address: str) -> int:
    if not text.isdigit() or not text.isascii() or not 0 < int(text) <= MAX_PORT:
        raise UsageError(f"--socket {address}: the port must be a number from 1 to {MAX_PORT}")
    return int(text)
