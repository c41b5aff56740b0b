"""shim: one supervisor process per OCI container.

The package is split by concern, like conmon's sources, so that a feature lives where its
name says: ``cli`` (flags), ``lifecycle`` (the run from create to exit), ``process``
(spawning, reaping, exit statuses), ``runtime`` (talking to runc/crun), ``bundle`` (OCI
config), ``signals``, ``stdio``, ``state`` (files other processes read), ``demo``.

This module must stay cheap to import: ``shim run`` starts the container before it pays
for trio.
"""

__version__ = "0.1.0"
