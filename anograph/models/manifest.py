"""The manifest of a model folder: the SHA-256 of every file in it, written last, checked on load.

A model folder holds ``tensors.safetensors``, ``model.json`` and, once alerts are calibrated,
``frame_calibration.json``. Any of them changes what a model scores or when it alerts, so
integrity covers the folder as a whole: ``manifest.json`` lists every other file of the
folder with its SHA-256 and size. :func:`verify_artifact` reads the folder and refuses, with
:class:`ModelArtifactError` naming the file, any listed file that is missing or whose bytes
differ, and any file in the folder the manifest does not list (a calibration or sidecar
copied in from another model). A file added after the model (the frame calibration) goes
through :func:`add_artifact_file`, which checks the folder first and then writes the file
and a new manifest, so the calibration is bound to the model it was computed for.

Folders without a manifest were written by older versions of anograph. They are refused
with a message to retrain: accepting them with a warning would let anyone skip every check
by deleting ``manifest.json``.

The manifest guards against accidental mix-ups and edits of the files, not against someone
who can rewrite the manifest too; the registry (:mod:`anograph.ops.registry`) records the
manifest's own SHA-256 for that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from anograph.errors import ModelArtifactError
from anograph.io.storage import Storage

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "anograph-artifact-manifest"
MANIFEST_FORMAT_VERSION = 1
RETRAIN_ADVICE = "retrain the model with this version of anograph (anograph run ...)"


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def manifest_entries(files: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    """``{name: {"sha256", "bytes"}}`` for the files of a folder."""
    return {name: {"sha256": sha256_hex(data), "bytes": len(data)} for name, data in sorted(files.items())}


def write_manifest(storage: Storage, key: str, files: Mapping[str, bytes]) -> bytes:
    """Write ``key/manifest.json`` listing ``files`` (name -> the bytes written); returns the manifest's bytes."""
    if MANIFEST_FILE in files:
        raise ValueError(f"{MANIFEST_FILE} cannot list itself")
    document = {"format": MANIFEST_FORMAT, "format_version": MANIFEST_FORMAT_VERSION,
                "files": manifest_entries(files)}
    data = json.dumps(document, indent=1, sort_keys=True).encode()
    storage.write_bytes(f"{key}/{MANIFEST_FILE}", data)
    return data


def read_manifest(storage: Storage, key: str) -> dict[str, dict[str, Any]]:
    """The entries of ``key/manifest.json``; :class:`ModelArtifactError` if it is missing or malformed."""
    location = storage.location(f"{key}/{MANIFEST_FILE}")
    if not storage.exists(f"{key}/{MANIFEST_FILE}"):
        if storage.exists(f"{key}/model.json"):
            raise ModelArtifactError(location, f"the model has no integrity manifest (saved by an older "
                                               f"anograph, or the manifest was removed); {RETRAIN_ADVICE}")
        raise ModelArtifactError(storage.location(key), "no model here (manifest.json and model.json are missing)")
    try:
        document = json.loads(storage.read_bytes(f"{key}/{MANIFEST_FILE}"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelArtifactError(location, f"the manifest is not valid JSON ({error})") from error
    if (not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT
            or document.get("format_version") != MANIFEST_FORMAT_VERSION or not isinstance(document.get("files"), dict)):
        raise ModelArtifactError(location, f"not a {MANIFEST_FORMAT} version {MANIFEST_FORMAT_VERSION}")
    for name, entry in document["files"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or "/" in name or name == MANIFEST_FILE:
            raise ModelArtifactError(location, f"malformed manifest entry {name!r}")
    return document["files"]


def folder_files(storage: Storage, key: str) -> list[str]:
    """Names (relative to ``key``) of the finished files in the folder ``key``, manifest excluded."""
    prefix = f"{key.rstrip('/')}/"
    return [found[len(prefix):] for found in storage.list(key)
            if found.startswith(prefix) and found[len(prefix):] != MANIFEST_FILE]


def verify_artifact(storage: Storage, key: str, allow_unlisted: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file of the model folder ``key``, checked against its manifest (see the module docstring).

    Returns ``{name: bytes}`` of the listed files, so callers use exactly the bytes that were
    checked. ``allow_unlisted`` names files that may be present without being listed (the file
    :func:`add_artifact_file` is about to replace); they are not returned.
    """
    entries = read_manifest(storage, key)
    present = set(folder_files(storage, key))
    extra = sorted(present - set(entries) - set(allow_unlisted))
    if extra:
        raise ModelArtifactError(storage.location(f"{key}/{extra[0]}"),
                                 "file is not in the model's manifest (copied from another model or added later)")
    files: dict[str, bytes] = {}
    for name, entry in sorted(entries.items()):
        location = storage.location(f"{key}/{name}")
        if name not in present:
            raise ModelArtifactError(location, "file listed in the model's manifest is missing")
        data = storage.read_bytes(f"{key}/{name}")
        if sha256_hex(data) != entry["sha256"]:
            raise ModelArtifactError(location, "file does not match the model's manifest (edited, corrupt or "
                                               "from another model)")
        files[name] = data
    return files


def add_artifact_file(storage: Storage, key: str, name: str, data: bytes) -> bytes:
    """Add (or replace) ``name`` in the verified model folder ``key`` and re-write its manifest.

    The folder is verified first, so a file is only ever bound to an intact model. Returns the
    new manifest's bytes.
    """
    if "/" in name or name == MANIFEST_FILE:
        raise ValueError(f"{name!r} is not a plain file name of a model folder")
    files = verify_artifact(storage, key, allow_unlisted=(name,))
    storage.write_bytes(f"{key}/{name}", data)
    return write_manifest(storage, key, {**files, name: data})
