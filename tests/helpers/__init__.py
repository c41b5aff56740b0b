"""Test helpers: real bundles, real runtimes, and a way to run the shim and check that it
left nothing behind."""
