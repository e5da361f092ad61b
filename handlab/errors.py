"""handlab's own errors: what the user gave is not what was expected.

``handlab`` on the command line prints these as one line (``handlab: error: ...``), exit status
1, with no traceback (``--debug`` shows it); anything else is a bug and keeps its traceback. Each
message names the file or argument and what was expected.

>>> raise InputError("--device cuda:7: expected a CUDA device index below 1, got 7")
Traceback (most recent call last):
...
handlab.errors.InputError: --device cuda:7: expected a CUDA device index below 1, got 7
"""

from __future__ import annotations

__all__ = ["HandlabError", "InputError", "OutputLockedError"]


class HandlabError(Exception):
    """Base of the errors about the user's input, files or folders (never about a bug)."""


class InputError(HandlabError, ValueError):
    """A file, folder or argument is missing, unreadable or not what was expected."""


class OutputLockedError(HandlabError, RuntimeError):
    """An output folder is in use by another running handlab process."""
