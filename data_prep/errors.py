"""Errors that name the file at fault and say what to do (a wrong config value raises
`common.config.ConfigError`, the project's one config error type)."""

from __future__ import annotations


class PrepError(Exception):
    """Base class for data-prep errors that should reach the user as one clear line."""


class InputFileError(PrepError):
    """An input file cannot be used (malformed XML, truncated gzip, bad checksum, empty, hostile).

    Long runs catch it, quarantine the file, list it in the manifest and go on.
    """

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
