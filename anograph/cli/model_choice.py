"""Which stored model a command means: ``--model`` (a name, a dataset or a path) and ``--version``.

Why: every training makes a new version of its model line (:mod:`anograph.ops.model_versions`),
so a model is named by its line (``ucsd-ped2-yolox-00d8ba5e56b8``) or the dataset it was
trained on, plus ``current`` (default), ``latest`` or a version id. The path a log printed is
accepted too: a model folder (``.../models/NAME/versions/V/model``), a version folder or a
line folder (``.../models/NAME``), as a key under the storage root or an absolute local path.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from anograph.errors import InputError
from anograph.io.storage import Storage
from anograph.models.manifest import MANIFEST_FILE
from anograph.ops.model_versions import MODELS_PREFIX, model_names, resolve_model

VERSION_HELP = "model version: current (default), latest or a version id (see anograph models list)"


def _key_below_root(storage: Storage, model: str) -> str:
    """``model`` as a key under the storage root (an absolute local path below it is made relative)."""
    path = Path(model).expanduser()
    if not path.is_absolute():
        return PurePosixPath(model).as_posix().strip("/")
    try:
        if not storage.is_local:
            raise ValueError(storage.root)
        return path.resolve().relative_to(Path(storage.base).resolve()).as_posix()
    except ValueError:
        raise InputError(path, f"model is not inside the storage root {storage.root}; pass --storage of its "
                               "store") from None


def resolve_model_key(storage: Storage, model: str, version: str = "current") -> str:
    """The storage key of the model folder ``model`` and ``version`` name (see the module docstring)."""
    key = _key_below_root(storage, model) if ("/" in model or Path(model).is_absolute()) else ""
    if key:
        for folder in (key, f"{key}/model"):
            if storage.exists(f"{folder}/{MANIFEST_FILE}"):
                if version != "current":
                    raise InputError(storage.location(folder), f"is one model version; leave --version {version} "
                                                               "out or give the model's name")
                return folder
        parts = key.split("/")
        if len(parts) == 2 and parts[0] == MODELS_PREFIX and parts[1] in model_names(storage):
            model = parts[1]
        else:
            raise InputError(storage.location(key), "holds no model (give a model name, a dataset or a model "
                                                    "folder; see anograph models list)")
    return resolve_model(storage, model, version).model_key


def record_of_model_key(storage: Storage, key: str) -> dict[str, Any] | None:
    """The registry record (as a dict) of a versioned model folder ``.../versions/<version>/model``, else ``None``."""
    if not key.endswith("/model"):
        return None
    record_key = f"{key[:-len('/model')]}/record.json"
    return json.loads(storage.read_bytes(record_key)) if storage.exists(record_key) else None
