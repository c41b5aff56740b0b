"""Files other processes read: the per-container state directory, pid and exit files.
Everything another process may read is written atomically (a temp file, then rename)."""
