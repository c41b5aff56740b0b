"""``shim demo``: build (once) a busybox bundle and run it under the shim, with the shim
reporting what it did: the runtime, the container's pid, its exit status, the timings."""

from __future__ import annotations

import os
import sys

from shim.cli.parser import Option, format_help, parse
from shim.demo.bundle import cache_root, cached_busybox_rootfs, default_config, write_config
from shim.errors import ShimError

DEMO_OPTIONS = [
    Option("runtime", "r", metavar="NAME|PATH", help="OCI runtime (default: crun where it works here, else runc)"),
    Option("help", "h", help="show this help and exit"),
]

# The payload shows what the shim is for: output relayed on both streams, orphans
# re-parented to the shim and reaped, and the exit status passed through.
DEMO_SCRIPT = """\
echo "hello from a container: hostname $(hostname), pid $$"
echo "starting 3 children that I abandon; the shim reaps them when they die"
for i in 1 2 3; do (sleep 0.2 &); done
echo "this line goes to stderr" >&2
sleep 0.5
echo "bye"
"""


def demo_command(argv: list[str]) -> int:
    values, positionals = parse(argv, DEMO_OPTIONS)
    if values.get("help") or positionals:
        sys.stdout.write(format_help("shim demo [-r RUNTIME]",
                                     "Run a small busybox container under the shim and report what happened.",
                                     DEMO_OPTIONS))
        return 0 if values.get("help") else 125
    if os.geteuid() != 0:
        raise ShimError("the demo runs a rootful container: run it as root (sudo shim demo)")
    bundle = prepare_bundle(dict(os.environ))
    sys.stdout.write(f"shim demo: bundle {bundle}\n")
    sys.stdout.flush()
    from shim.cli.app import run_command

    run_argv = ["--log-level", "info", "-b", bundle]
    if values.get("runtime"):
        run_argv += ["-r", str(values["runtime"])]
    return run_command(run_argv + [f"shim-demo-{os.getpid()}"])


def prepare_bundle(env: dict[str, str]) -> str:
    cache = cache_root(env)
    rootfs = cached_busybox_rootfs(cache)
    bundle = os.path.join(cache, "demo-bundle")
    config = default_config(["/bin/sh", "-c", DEMO_SCRIPT], rootfs)
    config["hostname"] = "shim-demo"
    # In the host's pid namespace the abandoned children are re-parented to the shim
    # itself, so the demo shows the subreaper at work (in its own pid namespace, the
    # container's init would inherit them).
    config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "pid"]
    return write_config(bundle, config)
