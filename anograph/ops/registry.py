"""A model registry under the storage root: versions, their records, and a ``current`` pointer.

Why: nightly retraining produces a new model every night, and only some of them should be
served. The registry keeps every trained model with what it was trained on, how it was
configured and how it scored, and names one of them ``current``. Promotion and rollback
move that pointer; they never touch a model.

Layout (keys under the storage root)::

    registry/versions/<version>/model/model.json            the AnoGraph artifact (anograph.models.estimator)
    registry/versions/<version>/model/tensors.safetensors
    registry/versions/<version>/model/frame_calibration.json  the alert thresholds (anograph.serving.calibration)
    registry/versions/<version>/record.json                 written last: the version is complete
    registry/current.json                                   the pointer and the promotion history

``record.json`` holds ``version``, ``created_at``, ``model_key``, ``model_sha256`` (SHA-256 of
the exact ``model.json`` bytes, which in turn hold the tensors' SHA-256), ``training_manifest``
(the shard keys the model was trained on), ``config`` and ``metrics`` (filled in after
evaluation). ``current.json`` holds ``current`` (a version or ``None``) and ``history``, one
event per move: ``{"action": "promote"|"rollback", "from", "to", "at", "reason"}``.

Crash safety: every object is written atomically (:meth:`Storage.write_bytes`). A version is
written model first, record last, and is verified (record, sidecar hash, tensors hash, full
load) before the pointer moves. The pointer and its history are one object, so a crash at
any point leaves ``current`` naming the old complete model or the new complete model.
Versions are timestamped plus a random suffix, so two trainers never pick the same one.

Concurrency: moves are last-writer-wins on the pointer object. :meth:`ModelRegistry.promote`
takes ``expected_current`` and refuses to move a pointer that changed since the caller
compared against it; that narrows a race to milliseconds but is not a lock. The nightly
deployment runs one at a time (see ``docs/operations.md``).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from anograph.errors import AnographError, InputError, ModelArtifactError
from anograph.io.storage import Storage
from anograph.models.estimator import SIDECAR_FILE, AnoGraph
from anograph.serving.calibration import FrameCalibration, save_frame_calibration

REGISTRY_PREFIX = "registry"
POINTER_KEY = f"{REGISTRY_PREFIX}/current.json"
RECORD_FILE = "record.json"
RECORD_FORMAT_VERSION = 1
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
    model_sha256: str
    training_manifest: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None

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
        The storage root (local folder or URI) holding ``registry/``.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    # ----- keys
    @staticmethod
    def _check_version(version: str) -> str:
        if not isinstance(version, str) or not _VERSION_PATTERN.match(version):
            raise InputError(None, f"{version!r} is not a registry version id (like 20261128T140000123456Z-3fa2c1)")
        return version

    def _version_prefix(self, version: str) -> str:
        return f"{REGISTRY_PREFIX}/versions/{self._check_version(version)}"

    def model_key(self, version: str) -> str:
        """Storage key of a version's model artifact (for :meth:`AnoGraph.load`)."""
        return f"{self._version_prefix(version)}/model"

    def _record_key(self, version: str) -> str:
        return f"{self._version_prefix(version)}/{RECORD_FILE}"

    # ----- writing
    def register(
        self,
        model: AnoGraph,
        training_manifest: dict[str, Any],
        config: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        frame_calibration: FrameCalibration | None = None,
    ) -> ModelRecord:
        """Store a fitted model as a new version: artifact (and its frame calibration) first, record last, verify."""
        version = new_version_id()
        model_key = self.model_key(version)
        model.save(self.storage, model_key)
        if frame_calibration is not None:
            save_frame_calibration(frame_calibration, self.storage, model_key)
        sidecar = self.storage.read_bytes(f"{model_key}/{SIDECAR_FILE}")
        record = ModelRecord(
            version=version,
            created_at=_now(),
            model_key=model_key,
            model_sha256=hashlib.sha256(sidecar).hexdigest(),
            training_manifest=training_manifest,
            config=config or {},
            metrics=metrics,
        )
        self._write_record(record)
        self.verify(version)
        return record

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
        prefix = f"{REGISTRY_PREFIX}/versions/"
        found = []
        for key in self.storage.list(f"{REGISTRY_PREFIX}/versions"):
            if key.startswith(prefix) and key.endswith(suffix):
                version = key[len(prefix):-len(suffix)]
                if _VERSION_PATTERN.match(version):
                    found.append(version)
        return sorted(found)

    def record(self, version: str) -> ModelRecord:
        """The record of one version; :class:`RegistryError` if there is no such version."""
        key = self._record_key(version)
        if not self.storage.exists(key):
            raise RegistryError(f"no model version {version} in {self.storage.uri}/{REGISTRY_PREFIX}")
        try:
            value = json.loads(self.storage.read_bytes(key))
            if value.get("format_version") != RECORD_FORMAT_VERSION:
                raise ValueError(f"record format {value.get('format_version')!r} is not {RECORD_FORMAT_VERSION}")
            return ModelRecord.from_dict(value)
        except (ValueError, TypeError, AttributeError) as error:
            raise ModelArtifactError(f"{self.storage.uri}/{key}", f"registry record is unreadable ({error})") from error

    def verify(self, version: str) -> AnoGraph:
        """Check a version end to end and return its model.

        The record must exist, the sidecar's bytes must hash to the record's ``model_sha256``
        and the tensors to the sidecar's hash (checked by :meth:`AnoGraph.load`). Anything else
        raises :class:`ModelArtifactError` naming the artifact.
        """
        record = self.record(version)
        sidecar_key = f"{record.model_key}/{SIDECAR_FILE}"
        if record.model_key != self.model_key(version):
            raise ModelArtifactError(f"{self.storage.uri}/{self._record_key(version)}",
                                     f"record names model {record.model_key}, not this version's")
        if not self.storage.exists(sidecar_key):
            raise ModelArtifactError(f"{self.storage.uri}/{sidecar_key}", "model of this version is missing")
        if hashlib.sha256(self.storage.read_bytes(sidecar_key)).hexdigest() != record.model_sha256:
            raise ModelArtifactError(
                f"{self.storage.uri}/{sidecar_key}",
                f"model.json does not match the registry record of {version} (tampered or replaced)",
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
                raise RegistryError(f"no model has been promoted in {self.storage.uri}/{REGISTRY_PREFIX}")
            return current
        return self._check_version(version)

    def _pointer(self) -> dict[str, Any]:
        if not self.storage.exists(POINTER_KEY):
            return {"current": None, "history": []}
        try:
            pointer = json.loads(self.storage.read_bytes(POINTER_KEY))
            if not isinstance(pointer, dict) or "current" not in pointer or not isinstance(pointer.get("history"), list):
                raise ValueError("missing 'current' or 'history'")
            return pointer
        except ValueError as error:
            raise ModelArtifactError(f"{self.storage.uri}/{POINTER_KEY}", f"registry pointer is unreadable ({error})") from error

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
        self.storage.write_bytes(POINTER_KEY, json.dumps(new_pointer, indent=1).encode())

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
            raise RegistryError(f"nothing to roll back to in {self.storage.uri}/{REGISTRY_PREFIX}")
        self._move("rollback", target, reason, ANY_CURRENT)
        return target

