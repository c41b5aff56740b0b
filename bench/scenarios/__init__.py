"""One module per scenario; each has ``run(env, quick) -> dict`` returning named sample
lists (milliseconds or microseconds, as the scenario says) and notes."""
