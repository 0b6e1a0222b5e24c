"""Errors raised by the model zoo. Imports nothing heavy, so the web process may import it."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint cannot be used: missing, too large, corrupt, unsafe, or not matching the model.

    The message names the file (or folder) and the problem.
    """
