"""Errors that name the file or key at fault and say what to do."""

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


class ConfigError(PrepError):
    """A configuration value is wrong; raised before any work starts, naming the key."""

    def __init__(self, key: str, reason: str):
        self.key = key
        self.reason = reason
        super().__init__(f"config key '{key}': {reason}")
