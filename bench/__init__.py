"""Benchmarks: every performance claim of the project, measured side by side with the
peers (conmon, tini, catatonit, dumb-init, the runtimes alone) in one run.
See bench/README.md; run ``python -m bench`` (or ``--quick``)."""
