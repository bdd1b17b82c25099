"""Reloading the config while serving: the reloader and the board its workers report to."""
