"""The local folder a command writes its results to, checked before any work starts.

Why: a command that scores for minutes and then finds that ``--out`` is an existing file,
or a folder it may not write to, wastes that work and ends in a raw ``OSError``.
:func:`prepare_output_folder` creates the folder (with its parents) and proves it writable
with a probe file, or raises :class:`InputError` naming the path and the reason.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from anograph.errors import InputError


def prepare_output_folder(path: str | Path) -> Path:
    """Create ``path`` if needed and check that files can be written in it; returns it resolved.

    Refused (:class:`InputError` naming the path): an existing file, a path below a file,
    a folder that cannot be created, a folder that is not writable.
    """
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InputError(folder, "the output folder is an existing file; give a folder")
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(ancestor, f"is a file, so the output folder {folder} cannot be created below it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor, probe = tempfile.mkstemp(prefix=".anograph-write-check-", dir=folder)
        os.close(descriptor)
        os.unlink(probe)
    except OSError as error:
        raise InputError(folder, f"the output folder is not writable ({error.strerror or error})") from error
    return folder.resolve()
