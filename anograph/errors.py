"""Exceptions raised for bad user input.

Every error that a user can cause names the offending file (or setting) and the reason,
so the CLI can print one clear line instead of a stack trace from deep inside a library.
"""

from __future__ import annotations

from pathlib import Path


class AnographError(Exception):
    """Base class for every error anograph raises on purpose."""


class StorageUnavailableError(AnographError):
    """The storage server cannot be reached (down, restarting, network fault).

    Not an :class:`InputError`: the same call may succeed later, so tasks retry it.
    """


class InputError(AnographError):
    """A user-supplied file, folder or setting is unusable.

    Parameters
    ----------
    path:
        The file or folder at fault (or ``None`` when the fault is a setting).
    reason:
        What is wrong with it, phrased for the user.
    """

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = None if path is None else str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class VideoReadError(InputError):
    """A video file or frame folder cannot be opened or decoded."""


class ModelArtifactError(InputError):
    """A model artifact is missing, corrupt, or does not fit the data it is applied to."""
