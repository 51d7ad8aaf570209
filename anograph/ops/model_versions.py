"""Named model lines: every training makes a new immutable version, found again by name or dataset.

Why: ``anograph run`` used to save its model at ``models/<dataset>-<fingerprint>``, so a
second training overwrote the first, and a report could name a model that no longer
existed. Now each training gets a fresh version in the model line ``<name>`` (by default
``<dataset>-<extraction fingerprint>``), a :class:`anograph.ops.registry.ModelRegistry` under
``models/<name>/``::

    models/<name>/versions/<version>/model/     the model folder (manifest.json, model.json, ...)
    models/<name>/versions/<version>/record.json
    models/<name>/current.json                  which version ``current`` names

The order a training follows: :func:`new_model_version` (a fresh key, nothing written),
save the model and its frame calibration at ``ModelVersion.model_key``,
:func:`record_model_version` (verify, write the record: the version exists from then on),
then promote it (``ModelRegistry.promote``) when it should be the one ``current`` names.
:func:`resolve_model` finds a version by line name or dataset and ``current``, ``latest``
or an id; :func:`list_model_versions` lists every version of every line, and of the nightly
``registry/``, with its options, metrics and creation time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from anograph.errors import InputError
from anograph.io.storage import Storage
from anograph.ops.registry import REGISTRY_PREFIX, ModelRecord, ModelRegistry, RegistryError

MODELS_PREFIX = "models"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
NIGHTLY_LINE = "registry"
"""The name :func:`list_model_versions` gives the nightly deployment's registry (``registry/``)."""


@dataclass(frozen=True)
class ModelVersion:
    """A version being trained: its line, its id and the key to save the model folder under."""

    name: str
    version: str
    model_key: str


@dataclass(frozen=True)
class ListedVersion:
    """One row of :func:`list_model_versions`."""

    name: str
    record: ModelRecord
    current: bool


def check_model_name(name: str) -> str:
    """``name`` if it is a plain model line name (letters, digits, ``.``, ``_``, ``-``), else :class:`InputError`."""
    if not isinstance(name, str) or not _NAME_PATTERN.match(name) or name in (".", ".."):
        raise InputError(None, f"{name!r} is not a model name (letters, digits, '.', '_' and '-' only)")
    return name


def model_line(storage: Storage, name: str) -> ModelRegistry:
    """The registry of the model line ``name`` (``registry`` is the nightly deployment's)."""
    if name == NIGHTLY_LINE:
        return ModelRegistry(storage)
    return ModelRegistry(storage, prefix=f"{MODELS_PREFIX}/{check_model_name(name)}")


def model_names(storage: Storage) -> list[str]:
    """Names of the model lines with at least one complete version, sorted (the nightly ``registry`` last)."""
    names = set()
    for key in storage.list(MODELS_PREFIX):
        parts = key.split("/")
        if len(parts) == 5 and parts[2] == "versions" and parts[4] == "record.json":
            names.add(parts[1])
    found = sorted(name for name in names if _NAME_PATTERN.match(name))
    return found + ([NIGHTLY_LINE] if ModelRegistry(storage).versions() else [])


def new_model_version(storage: Storage, name: str) -> ModelVersion:
    """A fresh, time-ordered version of the line ``name``; save the model at its ``model_key``."""
    version, model_key = model_line(storage, name).new_version()
    return ModelVersion(name=name, version=version, model_key=model_key)


def record_model_version(
    storage: Storage,
    version: ModelVersion,
    training_manifest: dict[str, Any],
    options: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    dataset: str | None = None,
) -> ModelRecord:
    """Verify the saved model folder of ``version`` and write its record (the version is complete)."""
    return model_line(storage, version.name).record_version(
        version.version, training_manifest, config=options, metrics=metrics, name=version.name, dataset=dataset)


def _latest_dataset(storage: Storage, name: str) -> str | None:
    line = model_line(storage, name)
    versions = line.versions()
    return line.record(versions[-1]).dataset if versions else None


def _line_for(storage: Storage, dataset_or_name: str) -> str:
    names = model_names(storage)
    if dataset_or_name in names:
        return dataset_or_name
    matches = [name for name in names if _latest_dataset(storage, name) == dataset_or_name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise InputError(None, f"several models were trained on {dataset_or_name!r}: {', '.join(matches)}; "
                               f"give one of these names")
    known = ", ".join(names) or "none"
    raise InputError(storage.location(MODELS_PREFIX), f"no model named or trained on {dataset_or_name!r} "
                                                      f"(models: {known})")


def resolve_model(storage: Storage, dataset_or_name: str, version: str = "current") -> ModelRecord:
    """The record of a version, found by line name or dataset, after verifying its whole model folder.

    ``version``: ``"current"`` (what the line's pointer names), ``"latest"`` (the newest
    complete version) or a version id. Load the model with ``AnoGraph.load(storage,
    record.model_key)`` (or ``load_scoring_model(f"{storage.root}/{record.model_key}")``).
    """
    line = model_line(storage, _line_for(storage, dataset_or_name))
    if version == "latest":
        versions = line.versions()
        if not versions:
            raise RegistryError(f"no model version in {storage.location(line.prefix)}")
        version = versions[-1]
    record, _ = line.load(version)
    return record


def list_model_versions(storage: Storage) -> list[ListedVersion]:
    """Every complete version of every model line (and of the nightly ``registry/``), oldest first per line."""
    listed = []
    for name in model_names(storage):
        line = model_line(storage, name)
        current = line.current()
        listed.extend(ListedVersion(name, line.record(version), version == current) for version in line.versions())
    return listed


__all__ = ["MODELS_PREFIX", "NIGHTLY_LINE", "REGISTRY_PREFIX", "ListedVersion", "ModelVersion", "check_model_name",
           "list_model_versions", "model_line", "model_names", "new_model_version", "record_model_version",
           "resolve_model"]
