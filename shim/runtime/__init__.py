"""The OCI runtime (runc, crun): finding it, its command lines, reading its failures."""
