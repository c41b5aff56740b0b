"""A Debian bookworm root filesystem with systemd, for systemd-mode tests.

Built once with ``debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus`` from
the mirror this host's apt uses (about 30 s and 240 MB), cached outside the repository,
then given two units of the tests' own, enabled at boot:
- ``shim-marker.service`` writes /out/marker (/out is bound from the host by the tests);
- ``shim-notify.service``, ``Type=notify``, reports ready through ``systemd-notify``, and
  only then does its ``ExecStartPost`` write /out/inner-ready.
The tree is built in a temp directory and renamed into place when complete.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile

from tests.helpers.rootfs import cache_dir

SUITE = "bookworm"
VERSION = "1"  # bump when the units below change: a new cache entry is built

MARKER_UNIT = """[Unit]
Description=shim test marker
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo booted > /out/marker'
[Install]
WantedBy=multi-user.target
"""

NOTIFY_UNIT = """[Unit]
Description=shim test Type=notify service
[Service]
Type=notify
NotifyAccess=all
ExecStart=/bin/sh -c 'sleep 0.1; systemd-notify --ready --status=inner-ready; exec sleep infinity'
ExecStartPost=/bin/sh -c 'echo ready > /out/inner-ready'
[Install]
WantedBy=multi-user.target
"""


def host_mirror() -> str:
    """The Debian mirror this host's apt uses (one-line or deb822 sources)."""
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.sources")),
                 *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        try:
            text = open(path).read()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if line.startswith("URIs:") and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and len(words) >= 3:
                uri = next((w for w in words[1:] if w.startswith("http")), None)
                if uri and "security" not in uri:
                    return uri
    return "http://deb.debian.org/debian"


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "debootstrap needs root"
    if shutil.which("debootstrap") is None:
        return "debootstrap is missing (apt-get install debootstrap)"
    return None


def cached_debian_systemd_rootfs() -> str:
    target = os.path.join(cache_dir(), f"debian-{SUITE}-systemd-v{VERSION}")
    if os.path.isfile(os.path.join(target, ".complete")):
        return target
    temp = tempfile.mkdtemp(prefix=f".debian-{SUITE}.", dir=cache_dir())
    try:
        subprocess.run(["debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus",
                        SUITE, temp, host_mirror()], check=True, capture_output=True, timeout=900)
        units = os.path.join(temp, "etc/systemd/system")
        wants = os.path.join(units, "multi-user.target.wants")
        os.makedirs(wants, exist_ok=True)
        for name, text in (("shim-marker.service", MARKER_UNIT), ("shim-notify.service", NOTIFY_UNIT)):
            with open(os.path.join(units, name), "w") as f:
                f.write(text)
            os.symlink(f"/etc/systemd/system/{name}", os.path.join(wants, name))
        os.makedirs(os.path.join(temp, "out"), exist_ok=True)
        # an empty machine-id: systemd derives one from $container_uuid, as in an image
        open(os.path.join(temp, "etc/machine-id"), "w").close()
        os.chmod(temp, 0o755)  # mkdtemp made it 0700: the image's non-root users need to get in
        open(os.path.join(temp, ".complete"), "w").close()
        os.rename(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        if not os.path.isfile(os.path.join(target, ".complete")):
            raise
    return target
