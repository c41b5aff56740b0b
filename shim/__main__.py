"""``python -m shim``: the same entry point as the ``shim`` console script."""

from shim.cli.app import main_and_exit

main_and_exit()
