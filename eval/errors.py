"""Errors that reach the user as one line naming the file or config key and what to do."""

from __future__ import annotations


class EvalError(Exception):
    """Base class: `python -m eval` prints these as a single `error: ...` line and exits 2."""


class ConfigError(EvalError):
    def __init__(self, key: str, reason: str):
        self.key = key
        self.reason = reason
        super().__init__(f"config key '{key}': {reason}")


class DataFileError(EvalError):
    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ContaminationError(EvalError):
    """The checkpoint was trained on documents of the evaluation set."""
