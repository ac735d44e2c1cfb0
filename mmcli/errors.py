"""One exception family; each class knows its exit code (documented in the README)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_MISSING = 4
EXIT_GATE = 5
EXIT_IO = 6
EXIT_LOCKED = 7
EXIT_STALE = 8  # `mmcli status`: something is stale, incomplete or missing
EXIT_INTERRUPTED = 130


class MmcliError(Exception):
    """A user-facing failure: printed as one line, no traceback unless --debug."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(MmcliError):
    """Bad flags, bad config file, impossible parameter combination."""

    exit_code = EXIT_USAGE


class DataError(MmcliError):
    """The input data is bad: a row, a column, a whole manifest."""

    exit_code = EXIT_DATA


class MissingInputError(MmcliError):
    """A file or artifact the command needs does not exist or is not a valid artifact."""

    exit_code = EXIT_MISSING


class GateFailed(MmcliError):
    """A --fail-under quality gate was not met."""

    exit_code = EXIT_GATE


class IOFailure(MmcliError):
    """Writing an output failed (disk full, permissions); the old output is untouched."""

    exit_code = EXIT_IO


class LockedError(MmcliError):
    """Another mmcli process is writing the same output."""

    exit_code = EXIT_LOCKED
