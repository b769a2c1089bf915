"""The exception hierarchy. Commands raise these; ``cli.main`` turns them into one line and an exit code."""

from __future__ import annotations


class FtraceIPCError(Exception):
    """Base of every error ftraceipc reports to the user as one line (never a traceback)."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def line(self) -> str:
        return f"{self.message}: {self.hint}" if self.hint else self.message


class CommandError(FtraceIPCError):
    """Bad usage or input of a command (exit code 2 unless told)."""

    exit_code = 2


class TracefsError(FtraceIPCError):
    """tracefs is missing, not permitted, or refused a setting."""

    exit_code = 3


class CaptureFormatError(FtraceIPCError):
    """A capture file is truncated, corrupted or not a capture."""

    exit_code = 4

    def __init__(self, message: str, *, path: str | None = None, offset: int | None = None, hint: str | None = None):
        where = ""
        if path is not None:
            where = f" ({path}" + (f" at offset {offset}" if offset is not None else "") + ")"
        super().__init__(message + where, hint=hint)
        self.path = path
        self.offset = offset
