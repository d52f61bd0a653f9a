"""One exception hierarchy for the whole system.

The type of an error decides both the retry policy (``TemporaryError`` may be retried, nothing
else is) and the CLI's exit code, so no call site has to improvise either.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    DB_UNREACHABLE = 3
    HALTED = 4


class JiritsuError(Exception):
    """Base of every error the system raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILURE


class UsageError(JiritsuError):
    """Bad command-line input, bad file contents or anything else the user can fix."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """The configuration is invalid; ``problems`` lists (dotted key path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        lines = "; ".join(f"{key}: {msg}" for key, msg in problems)
        super().__init__(f"invalid configuration{where}: {lines}")


class DatabaseUnavailable(JiritsuError):
    """The database could not be reached after bounded retries."""

    exit_code = ExitCode.DB_UNREACHABLE


class DatabaseMissing(DatabaseUnavailable):
    """A read-only command found no SQLite database file (it never creates one as a side
    effect; ``jiritsu db upgrade`` does)."""


class Halted(JiritsuError):
    """Trading is halted (globally or for the bot in question)."""

    exit_code = ExitCode.HALTED


class TemporaryError(JiritsuError):
    """A failure that may go away on retry (timeouts, 5xx, rate limits)."""
