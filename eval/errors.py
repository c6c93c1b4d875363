"""Errors that reach the user as one line naming the file or config key and what to do.

`python -m eval` prints these (and `common.config.ConfigError`, `tasks.base.TaskError` such as
`DataFileError` for a bad benchmark or prediction file) as a single `error: ...` line and exits 2.
"""

from __future__ import annotations

from common.config import ConfigError
from tasks.base import DataFileError

__all__ = ["ConfigError", "ContaminationError", "DataFileError", "EvalError"]


class EvalError(Exception):
    """Base class of eval's own errors."""


class ContaminationError(EvalError):
    """The checkpoint was trained on documents of the evaluation set."""
