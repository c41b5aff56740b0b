"""Container logs: which drivers a run uses (``drivers``), the CRI ``k8s-file`` format and
its rotation (``k8s_file``), and the journal (``journald``). Each driver is a destination
of the output path (shim.stdio.output)."""
