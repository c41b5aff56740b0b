"""Is the payload systemd? (pure; podman's rule, so the same image behaves the same)

With ``--systemd=true`` the payload is systemd when its command, after a leading
``/bin/sh -c``, is ``/sbin/init``, ``/usr/sbin/init`` or ``/usr/local/sbin/init``, or its
basename is ``systemd``. ``always`` forces systemd mode, ``false`` never enters it.
"""

from __future__ import annotations

INIT_PATHS = frozenset({"/sbin/init", "/usr/sbin/init", "/usr/local/sbin/init"})


def payload_command(args: list[str]) -> str:
    """The command that will really run: the word after ``/bin/sh -c`` if that is how it
    starts (the command string's first word), else ``args[0]``."""
    if len(args) >= 3 and args[0] in ("/bin/sh", "sh") and args[1] == "-c":
        words = args[2].split()
        return words[0] if words else ""
    return args[0] if args else ""


def is_systemd_payload(args: list[str]) -> bool:
    command = payload_command(args)
    return command in INIT_PATHS or command.rsplit("/", 1)[-1] == "systemd"


def systemd_mode(flag: str, args: list[str]) -> bool:
    """``--systemd`` (true, false, always) applied to the payload's command."""
    if flag == "always":
        return True
    if flag == "false":
        return False
    return is_systemd_payload(args)
