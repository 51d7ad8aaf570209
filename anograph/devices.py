"""Where torch work runs: one resolver for the model, the appearance network and the detectors.

Every part that runs torch code takes the same ``device`` strings, so one flag (``--device``)
means the same thing everywhere: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (GPU number ``N``) or
``"auto"`` (CUDA when torch sees a GPU, else the CPU). Asking for a GPU that torch does not
see is bad input, named before any work starts.
"""

from __future__ import annotations

import torch

from anograph.errors import InputError

DEVICES_HELP = '"cpu", "cuda", "cuda:N" or "auto" (CUDA when present, else the CPU)'


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device for ``device`` (see :data:`DEVICES_HELP`); :class:`InputError` if it is unknown or absent."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise InputError(None, f"unknown device {device!r}; choose from {DEVICES_HELP}") from error
    if resolved.type not in ("cpu", "cuda"):
        raise InputError(None, f"unknown device {device!r}; choose from {DEVICES_HELP}")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(None, f"device {str(device)!r} asked for, but torch sees no CUDA device")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise InputError(None, f"device {str(device)!r} asked for, but torch sees "
                                   f"{torch.cuda.device_count()} CUDA device(s)")
    return resolved
