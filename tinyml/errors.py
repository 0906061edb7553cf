"""One error type for every user-facing failure.

Every failure a user can cause (bad file, unsupported op, model that does not
fit, silent serial port) is raised as `TinymlError` with three parts: the
cause, where it happened, and what to do. The CLI prints it as one line and
exits non-zero; no traceback reaches the user.
"""
from __future__ import annotations


class TinymlError(Exception):
    """A user-facing error: cause, location and fix, rendered on one line."""

    exit_code = 2

    def __init__(self, cause: str, where: str = "", fix: str = "") -> None:
        self.cause = cause
        self.where = where
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        parts = [f"error: {self.cause}"]
        if self.where:
            parts.append(f"(in {self.where})")
        if self.fix:
            parts.append(f"-- {self.fix}")
        return " ".join(parts)


class ModelError(TinymlError):
    """The model file is missing, corrupt, or uses something we do not support."""


class UnsupportedOpError(ModelError):
    """An operator we have no kernel for."""


class FitError(TinymlError):
    """The model does not fit the board's memory."""

    exit_code = 3


class VerifyError(TinymlError):
    """Generated code disagrees with the TFLite reference."""

    exit_code = 1


class ToolchainError(TinymlError):
    """A compiler, emulator or other external tool is missing or failed."""
