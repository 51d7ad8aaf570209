"""A model registry under the storage root: immutable versions, their records, and a ``current`` pointer.

Why: nightly retraining produces a new model every night, and only some of them should be
served. The registry keeps every trained model with what it was trained on, how it was
configured and how it scored, and names one of them ``current``. Promotion and rollback
move that pointer; they never touch a model.

Layout (keys under the storage root; ``<prefix>`` is ``registry`` for the nightly deployment's
registry and ``models/<name>`` for the model lines of :mod:`anograph.ops.model_versions`)::

    <prefix>/versions/<version>/model/manifest.json    the AnoGraph artifact (anograph.models.artifact):
    <prefix>/versions/<version>/model/...              model.json, tensors, frame calibration
    <prefix>/versions/<version>/record.json            written last: the version is complete
    <prefix>/current.json                              the pointer and the promotion history

``record.json`` holds ``version``, ``created_at``, ``model_key``, ``manifest_sha256`` (SHA-256 of
the exact ``manifest.json`` bytes, which in turn hold the SHA-256 of every file of the model
folder), ``training_manifest`` (the shard keys the model was trained on), ``config`` (the
training options), ``metrics`` (filled in after evaluation), and ``name`` / ``dataset`` for
model lines. ``current.json`` holds ``current`` (a version or ``None``) and ``history``, one
event per move: ``{"action": "promote"|"rollback", "from", "to", "at", "reason"}``.

Immutability: a version id is fresh for every training (:func:`new_version_id`), a model is
never saved into a folder that holds files, and a record is written once
(:meth:`ModelRegistry.record_version` refuses an existing one); only ``metrics`` are attached
later (:meth:`ModelRegistry.record_metrics`), and the model folder never changes after its record.

Crash safety: every object is written atomically (:meth:`Storage.write_bytes`). A version is
written model first, record last, and is verified (record, manifest hash, every file against
the manifest, full load) before the pointer moves. The pointer and its history are one object, so a crash at
any point leaves ``current`` naming the old complete model or the new complete model.
Versions are timestamped plus a random suffix, so two trainers never pick the same one.

Concurrency: moves are last-writer-wins on the pointer object. :meth:`ModelRegistry.promote`
takes ``expected_current`` and refuses to move a pointer that changed since the caller
compared against it; that narrows a race to milliseconds but is not a lock. The nightly
deployment runs one at a time (see ``docs/operations.md``).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from anograph.errors import AnographError, InputError, ModelArtifactError
from anograph.io.storage import Storage
from anograph.models.estimator import AnoGraph
from anograph.models.manifest import MANIFEST_FILE, folder_files, sha256_hex, verify_artifact
from anograph.serving.calibration import FrameCalibration, save_frame_calibration

REGISTRY_PREFIX = "registry"
POINTER_KEY = f"{REGISTRY_PREFIX}/current.json"
RECORD_FILE = "record.json"
RECORD_FORMAT_VERSION = 2
_VERSION_PATTERN = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{6}$")
ANY_CURRENT: Any = object()
"""Pass as ``expected_current`` to move the pointer whatever it names now."""


class RegistryError(AnographError):
    """A registry operation is impossible (unknown version, nothing to roll back to, a moved pointer)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_version_id() -> str:
    """A sortable, collision-free version id: UTC time to the microsecond plus six random hex digits."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"


@dataclass
class ModelRecord:
    """What the registry knows about one version (the content of ``record.json``)."""

    version: str
    created_at: str
    model_key: str
    manifest_sha256: str
    training_manifest: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    name: str | None = None
    dataset: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": RECORD_FORMAT_VERSION, **self.__dict__}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> ModelRecord:
        value = dict(value)
        value.pop("format_version", None)
        return cls(**value)


class ModelRegistry:
    """Register, verify, load, promote and roll back models under a storage root.

    Parameters
    ----------
    storage:
        The storage root (local folder or URI) holding the registry.
    prefix:
        The registry's folder under the root (default ``registry``, the nightly deployment's).
    """

    def __init__(self, storage: Storage, prefix: str = REGISTRY_PREFIX) -> None:
        self.storage = storage
        self.prefix = prefix.strip("/")
        self.pointer_key = f"{self.prefix}/current.json"

    # ----- keys
    @staticmethod
    def _check_version(version: str) -> str:
        if not isinstance(version, str) or not _VERSION_PATTERN.match(version):
            raise InputError(None, f"{version!r} is not a registry version id (like 20261128T140000123456Z-3fa2c1)")
        return version

    def _version_prefix(self, version: str) -> str:
        return f"{self.prefix}/versions/{self._check_version(version)}"

    def model_key(self, version: str) -> str:
        """Storage key of a version's model artifact (for :meth:`AnoGraph.load`)."""
        return f"{self._version_prefix(version)}/model"

    def _record_key(self, version: str) -> str:
        return f"{self._version_prefix(version)}/{RECORD_FILE}"

    # ----- writing
    def new_version(self) -> tuple[str, str]:
        """A fresh version id and the model key to save its artifact under (nothing is written)."""
        version = new_version_id()
        model_key = self.model_key(version)
        if self.storage.list(self._version_prefix(version)):
            raise RegistryError(f"version {version} already exists in {self.storage.location(self.prefix)}")
        return version, model_key

    def record_version(
        self,
        version: str,
        training_manifest: dict[str, Any],
        config: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        name: str | None = None,
        dataset: str | None = None,
    ) -> ModelRecord:
        """Complete ``version`` once its model folder (model, calibration) is written: verify it, write the record.

        Refuses a version that already has a record: versions are immutable.
        """
        if self.storage.exists(self._record_key(version)):
            raise RegistryError(f"model version {version} is already recorded; versions are never overwritten")
        model_key = self.model_key(version)
        verify_artifact(self.storage, model_key)
        record = ModelRecord(
            version=version,
            created_at=_now(),
            model_key=model_key,
            manifest_sha256=sha256_hex(self.storage.read_bytes(f"{model_key}/{MANIFEST_FILE}")),
            training_manifest=training_manifest,
            config=config or {},
            metrics=metrics,
            name=name,
            dataset=dataset,
        )
        self._write_record(record)
        self.verify(version)
        return record

    def register(
        self,
        model: AnoGraph,
        training_manifest: dict[str, Any],
        config: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        frame_calibration: FrameCalibration | None = None,
    ) -> ModelRecord:
        """Store a fitted model as a new version: artifact and its frame calibration first, record last, verify."""
        version, model_key = self.new_version()
        save_new_model(model, self.storage, model_key)
        if frame_calibration is not None:
            save_frame_calibration(frame_calibration, self.storage, model_key)
        return self.record_version(version, training_manifest, config, metrics)

    def _write_record(self, record: ModelRecord) -> None:
        data = json.dumps(record.to_dict(), indent=1, sort_keys=True, default=str).encode()
        self.storage.write_bytes(self._record_key(record.version), data)

    def record_metrics(self, version: str, metrics: dict[str, Any]) -> ModelRecord:
        """Attach evaluation metrics to a version (rewrites its record atomically)."""
        record = self.record(version)
        record.metrics = metrics
        self._write_record(record)
        return record

    # ----- reading
    def versions(self) -> list[str]:
        """Complete versions (those with a record), oldest first."""
        suffix = f"/{RECORD_FILE}"
        prefix = f"{self.prefix}/versions/"
        found = []
        for key in self.storage.list(f"{self.prefix}/versions"):
            if key.startswith(prefix) and key.endswith(suffix):
                version = key[len(prefix):-len(suffix)]
                if _VERSION_PATTERN.match(version):
                    found.append(version)
        return sorted(found)

    def record(self, version: str) -> ModelRecord:
        """The record of one version; :class:`RegistryError` if there is no such version."""
        key = self._record_key(version)
        if not self.storage.exists(key):
            raise RegistryError(f"no model version {version} in {self.storage.location(self.prefix)}")
        try:
            value = json.loads(self.storage.read_bytes(key))
            if value.get("format_version") != RECORD_FORMAT_VERSION:
                raise ValueError(f"record format {value.get('format_version')!r} is not {RECORD_FORMAT_VERSION}")
            return ModelRecord.from_dict(value)
        except (ValueError, TypeError, AttributeError) as error:
            raise ModelArtifactError(self.storage.location(key), f"registry record is unreadable ({error})") from error

    def verify(self, version: str) -> AnoGraph:
        """Check a version end to end and return its model.

        The record must exist, the manifest's bytes must hash to the record's ``manifest_sha256``
        and every file of the model folder must match the manifest (checked by
        :meth:`AnoGraph.load`). Anything else raises :class:`ModelArtifactError` naming the file.
        """
        record = self.record(version)
        manifest_key = f"{record.model_key}/{MANIFEST_FILE}"
        if record.model_key != self.model_key(version):
            raise ModelArtifactError(self.storage.location(self._record_key(version)),
                                     f"record names model {record.model_key}, not this version's")
        if not self.storage.exists(manifest_key):
            raise ModelArtifactError(self.storage.location(manifest_key), "model of this version is missing")
        if sha256_hex(self.storage.read_bytes(manifest_key)) != record.manifest_sha256:
            raise ModelArtifactError(
                self.storage.location(manifest_key),
                f"manifest.json does not match the registry record of {version} (tampered or replaced)",
            )
        return AnoGraph.load(self.storage, record.model_key)

    def load(self, version: str = "current") -> tuple[ModelRecord, AnoGraph]:
        """Verify and load a version, or the ``current`` one; refuses tampered artifacts."""
        version = self.resolve(version)
        return self.record(version), self.verify(version)

    def resolve(self, version: str) -> str:
        """``"current"`` -> the current version id; any other id is checked and returned."""
        if version == "current":
            current = self.current()
            if current is None:
                raise RegistryError(f"no model has been promoted in {self.storage.location(self.prefix)}")
            return current
        return self._check_version(version)

    def _pointer(self) -> dict[str, Any]:
        if not self.storage.exists(self.pointer_key):
            return {"current": None, "history": []}
        try:
            pointer = json.loads(self.storage.read_bytes(self.pointer_key))
            if not isinstance(pointer, dict) or "current" not in pointer or not isinstance(pointer.get("history"), list):
                raise ValueError("missing 'current' or 'history'")
            return pointer
        except ValueError as error:
            raise ModelArtifactError(self.storage.location(self.pointer_key),
                                     f"registry pointer is unreadable ({error})") from error

    def current(self) -> str | None:
        """The current version id, or ``None`` before the first promotion."""
        return self._pointer()["current"]

    def history(self) -> list[dict[str, Any]]:
        """Every promotion and rollback, oldest first."""
        return list(self._pointer()["history"])

    # ----- moving the pointer
    def _move(self, action: str, target: str, reason: str, expected_current: Any) -> None:
        self.verify(target)  # the pointer only ever names a complete, intact model
        pointer = self._pointer()
        if expected_current is not ANY_CURRENT and pointer["current"] != expected_current:
            raise RegistryError(
                f"current model moved from {expected_current} to {pointer['current']} since it was compared; "
                f"not moving it to {target}"
            )
        event = {"action": action, "from": pointer["current"], "to": target, "at": _now(), "reason": reason}
        new_pointer = {"current": target, "history": [*pointer["history"], event]}
        self.storage.write_bytes(self.pointer_key, json.dumps(new_pointer, indent=1).encode())

    def promote(self, version: str, reason: str = "", expected_current: Any = ANY_CURRENT) -> None:
        """Make ``version`` current after verifying it.

        ``expected_current``: the version the caller compared against (``None``: no model yet);
        the move is refused if ``current`` is something else by now. The default,
        :data:`ANY_CURRENT`, promotes whatever is current, as the CLI does.
        """
        self._move("promote", self._check_version(version), reason, expected_current)

    def previous(self) -> str | None:
        """The version that was current before the current one was last promoted."""
        pointer = self._pointer()
        for event in reversed(pointer["history"]):
            if event["action"] == "promote" and event["to"] == pointer["current"]:
                return event["from"]
        return None

    def rollback(self, reason: str = "") -> str:
        """Move ``current`` back to the version it replaced; returns that version."""
        target = self.previous()
        if target is None:
            raise RegistryError(f"nothing to roll back to in {self.storage.location(self.prefix)}")
        self._move("rollback", target, reason, ANY_CURRENT)
        return target



def save_new_model(model: AnoGraph, storage: Storage, model_key: str) -> None:
    """Save ``model`` at ``model_key``, refusing a folder that already holds files (versions are immutable)."""
    if folder_files(storage, model_key) or storage.exists(f"{model_key}/{MANIFEST_FILE}"):
        raise RegistryError(f"{storage.location(model_key)} already holds a model; versions are never overwritten")
    model.save(storage, model_key)
