"""Processes: spawning with clean signal state, the one reaper, exit-status encoding."""
