"""trio is imported without starting a child process (see shim/process/trio_import.py)."""

import subprocess
import sys
import textwrap


def test_trio_imports_without_a_child_process_and_still_names_threads():
    # A fresh interpreter: trio must not be imported yet for the check to mean anything.
    probe = textwrap.dedent("""
        import os, subprocess, sys
        assert "trio" not in sys.modules
        spawned = []
        real_init = subprocess.Popen.__init__
        def record(self, *args, **kwargs):
            spawned.append(args[0] if args else kwargs.get("args"))
            return real_init(self, *args, **kwargs)
        subprocess.Popen.__init__ = record
        real_fork = os.fork
        os.fork = lambda: spawned.append("fork") or real_fork()
        from shim.process.trio_import import import_trio
        trio = import_trio()
        import ctypes.util  # the real module is still there for anybody else
        print(len(spawned), trio._core._thread_cache.set_os_thread_name is not None,
              ctypes.util.find_library.__module__)
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "True", "ctypes.util"]


def test_modules_trio_loads_for_features_the_shim_never_uses_stay_unloaded_until_used():
    probe = textwrap.dedent("""
        import sys
        from shim.process.trio_import import UNUSED_BY_THE_SHIM, import_trio
        trio = import_trio(idle=False)
        async def main():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep, 0)
        trio.run(main)
        stand_ins = [n for n in UNUSED_BY_THE_SHIM if type(sys.modules.get(n)).__name__ == "LazyModule"]
        import ssl
        real = ssl.PROTOCOL_TLS_CLIENT  # first use: the real module comes in
        print(len(stand_ins) == len(UNUSED_BY_THE_SHIM), "_ssl" in sys.modules, type(sys.modules["ssl"]).__name__)
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "module"]
