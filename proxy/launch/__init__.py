"""`tollgate launch-check`: the GPT-image launch procedure, run as an app would run
it against a real Tollgate, with a report for the launch record."""

from .command import CannotRun, LaunchOptions, launch_check

__all__ = ["CannotRun", "LaunchOptions", "launch_check"]
