"""Model artifacts: ``key/tensors.safetensors`` (every array), ``key/model.json`` (everything else), ``key/manifest.json``.

No pickle anywhere: the tensors are safetensors, the parameters, layout, training record
and calibration summary are JSON. ``manifest.json`` is written last and holds the SHA-256
of every file of the folder (:mod:`anograph.models.manifest`); loading checks the whole
folder against it, so an edited ``model.json``, a calibration from another model or a
missing file is refused, naming the file. Tensor keys:
``encoder.weight`` / ``encoder.bias`` / ``encoder.prelu``, ``discriminator.weight`` /
``discriminator.bias``, ``summary``, ``standardizer.mean`` / ``standardizer.std``,
``knn.embedding_bank`` / ``knn.feature_bank`` (the bank the scorers compare with), and
each scorer's own state (:meth:`anograph.models.scorers.Scorer.state`:
``calibration.<scorer>``, ``group_knn.scale``).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import numpy as np
import safetensors.torch
import torch

from anograph.errors import ModelArtifactError
from anograph.extraction.features.layout import FeatureLayout
from anograph.graph.build import GraphConfig
from anograph.io.storage import Storage
from anograph.models.camera_scoring import load_attribute_scoring
from anograph.models.dgi import DeepGraphInfomax
from anograph.models.manifest import MANIFEST_FILE, verify_artifact, write_manifest
from anograph.models.scaling import FeatureSelection
from anograph.models.scorers import SCORER_CLASSES, SCORERS, make_scorers
from anograph.models.training import resolve_device

if TYPE_CHECKING:
    from anograph.models.estimator import AnoGraph

MODEL_FORMAT_VERSION = 1
TENSORS_FILE = "tensors.safetensors"
SIDECAR_FILE = "model.json"
MODEL_KIND = "anograph.models.estimator.AnoGraph"
__all__ = ["MANIFEST_FILE", "SIDECAR_FILE", "TENSORS_FILE", "load_model", "model_tensors", "read_artifact",
           "save_model"]


def _cpu(value: torch.Tensor | np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
    tensor = value.detach().cpu() if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))
    return (tensor if dtype is None else tensor.to(dtype)).contiguous()


def model_tensors(model: AnoGraph) -> dict[str, torch.Tensor]:
    """Every array of a fitted model, by artifact key."""
    tensors = {
        "encoder.weight": _cpu(model.encoder_.linear.weight, torch.float32),
        "encoder.bias": _cpu(model.encoder_.linear.bias, torch.float32),
        "encoder.prelu": _cpu(model.encoder_.activation.weight, torch.float32),
        "discriminator.weight": _cpu(model.discriminator_.weight, torch.float32),
        "discriminator.bias": _cpu(model.discriminator_.bias, torch.float32),
        "summary": _cpu(model.summary_, torch.float32),
        "standardizer.mean": _cpu(model.feature_mean_, torch.float64),
        "standardizer.std": _cpu(model.feature_std_, torch.float64),
        "knn.embedding_bank": _cpu(model.embedding_bank_, torch.float32),
        "knn.feature_bank": _cpu(model.feature_bank_, torch.float32),
    }
    for scorer in model.scorers_.values():
        tensors.update({name: _cpu(value) for name, value in scorer.state().items()})
    if getattr(model, "attribute_scoring_", None) is not None:
        _, arrays = model.attribute_scoring_.state()
        tensors.update({name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in arrays.items()})
    return tensors


def save_model(model: AnoGraph, storage: Storage, key: str) -> None:
    """Write ``model`` under ``key``: ``tensors.safetensors``, ``model.json``, then ``manifest.json`` listing both.

    A file left in the folder by an earlier save (a frame calibration) is not listed, so the
    model refuses to load until it is replaced through :func:`anograph.models.manifest.add_artifact_file`.
    """
    blob = safetensors.torch.save(model_tensors(model), metadata={"format": "anograph-model"})
    params = model.get_params(deep=False)
    params["graph"] = model.graph_config.to_dict()
    params["feature_groups"] = list(model.feature_groups) if model.feature_groups is not None else None
    sidecar = {
        "format_version": MODEL_FORMAT_VERSION,
        "kind": MODEL_KIND,
        "params": params,
        "feature_layout": model.feature_layout_.to_json(),
        "feature_groups": list(model.feature_groups_),
        "class_names": model.class_names_,
        "detector": model.detector_,
        "extraction_features": model.extraction_features_,
        "training": {
            "videos": model.training_videos_,
            "n_nodes": model.n_training_nodes_,
            "n_epochs": model.n_epochs_,
            "best_epoch": model.best_epoch_,
            "history": model.history_,
            "final_loss": model.history_[model.best_epoch_] if model.history_ else None,
            "separation": model.training_separation_,
            "fit_seconds": model.fit_seconds_,
            "torch_version": torch.__version__,
        },
        "calibration": {
            "method": "kNN scorers leave-one-video-out, discriminator in-sample; object-level scores",
            "n_nodes": int(len(model.calibration_scores_["discriminator"])),
            "quantiles": model.training_score_quantiles_,
        },
        "attributes": None if getattr(model, "attribute_scoring_", None) is None else model.attribute_scoring_.state()[0],
        "tensors_file": TENSORS_FILE,
        "tensors_sha256": hashlib.sha256(blob).hexdigest(),
    }
    sidecar_bytes = json.dumps(sidecar, indent=1, sort_keys=True).encode()
    storage.write_bytes(f"{key}/{TENSORS_FILE}", blob)
    storage.write_bytes(f"{key}/{SIDECAR_FILE}", sidecar_bytes)
    write_manifest(storage, key, {TENSORS_FILE: blob, SIDECAR_FILE: sidecar_bytes})


def read_artifact(storage: Storage, key: str) -> tuple[dict[str, Any], bytes]:
    """The sidecar and the tensor bytes under ``key``, after checking the whole folder against its manifest."""
    files = verify_artifact(storage, key)
    sidecar_path = storage.location(f"{key}/{SIDECAR_FILE}")
    for name in (SIDECAR_FILE, TENSORS_FILE):
        if name not in files:
            raise ModelArtifactError(storage.location(f"{key}/{name}"), "the model's manifest does not list it")
    try:
        sidecar = json.loads(files[SIDECAR_FILE])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelArtifactError(sidecar_path, f"model sidecar is not valid JSON ({error})") from error
    if not isinstance(sidecar, dict) or sidecar.get("format_version") != MODEL_FORMAT_VERSION:
        found = sidecar.get("format_version") if isinstance(sidecar, dict) else None
        raise ModelArtifactError(sidecar_path, f"model format {found!r} is not {MODEL_FORMAT_VERSION}")
    blob = files[TENSORS_FILE]
    if hashlib.sha256(blob).hexdigest() != sidecar.get("tensors_sha256"):
        raise ModelArtifactError(storage.location(f"{key}/{TENSORS_FILE}"),
                                 "model tensors do not match model.json (corrupt or from another save)")
    return sidecar, blob


def load_model(cls: type[AnoGraph], storage: Storage, key: str, device: str | None = None) -> AnoGraph:
    """Read a model written by :func:`save_model` as an instance of ``cls``.

    ``device`` overrides the saved device; without it, a model saved with ``"cuda"`` loads
    on the CPU where torch sees no GPU. Anything missing, corrupt or inconsistent raises
    :class:`ModelArtifactError` naming the artifact.
    """
    sidecar, blob = read_artifact(storage, key)
    sidecar_path = storage.location(f"{key}/{SIDECAR_FILE}")
    try:
        return _restore(cls, sidecar, safetensors.torch.load(blob), device)
    except ModelArtifactError as error:
        raise ModelArtifactError(sidecar_path, error.reason) from error
    except Exception as error:  # any malformed content: name the artifact, keep the cause
        raise ModelArtifactError(
            sidecar_path, f"model artifact is corrupt ({type(error).__name__}: {error})"
        ) from error


def _restore(
    cls: type[AnoGraph], sidecar: dict[str, Any], tensors: dict[str, torch.Tensor], device: str | None
) -> AnoGraph:
    params = dict(sidecar["params"])
    if device is not None:
        params["device"] = device
    elif str(params.get("device", "cpu")).startswith("cuda") and not torch.cuda.is_available():
        params["device"] = "cpu"  # trained on a GPU, scored on a machine without one
    params["graph"] = GraphConfig.from_dict(params["graph"])
    if params.get("feature_groups") is not None:
        params["feature_groups"] = tuple(params["feature_groups"])
    model = cls(**params)
    model.selection_ = FeatureSelection(FeatureLayout.from_json(sidecar["feature_layout"]), sidecar["feature_groups"])
    model.class_names_ = list(sidecar["class_names"])
    model.detector_ = dict(sidecar["detector"])
    model.extraction_features_ = dict(sidecar.get("extraction_features") or {})  # older models kept none
    training = sidecar["training"]
    model.training_videos_ = list(training["videos"])
    model.n_training_nodes_ = int(training["n_nodes"])
    model.n_epochs_ = int(training["n_epochs"])
    model.best_epoch_ = int(training["best_epoch"])
    model.history_ = [float(value) for value in training["history"]]
    model.training_separation_ = float(training["separation"])
    model.fit_seconds_ = float(training["fit_seconds"])

    weight = tensors["encoder.weight"]
    hidden, width = weight.shape
    if width != model.selection_.width or hidden != int(model.hidden_channels):
        raise ModelArtifactError(
            None,
            f"encoder weight has shape {tuple(weight.shape)}, expected ({model.hidden_channels}, {model.selection_.width})",
        )
    dgi = DeepGraphInfomax(width, hidden)
    dgi.encoder.linear.weight.data.copy_(weight)
    dgi.encoder.linear.bias.data.copy_(tensors["encoder.bias"])
    dgi.encoder.activation.weight.data.copy_(tensors["encoder.prelu"])
    dgi.discriminator.weight.data.copy_(tensors["discriminator.weight"])
    dgi.discriminator.bias.data.copy_(tensors["discriminator.bias"])
    torch_device = resolve_device(model.device)
    model.dgi_ = dgi.to(torch_device).eval()
    model.summary_ = tensors["summary"].to(torch_device)
    standardizer = model.new_standardizer()
    standardizer.mean_ = tensors["standardizer.mean"].numpy()
    standardizer.std_ = tensors["standardizer.std"].numpy()
    standardizer.n_objects_ = model.n_training_nodes_
    model.standardizer_ = standardizer
    model.embedding_bank_ = tensors["knn.embedding_bank"].numpy()
    model.feature_bank_ = tensors["knn.feature_bank"].numpy()
    arrays = {name: tensor.numpy() for name, tensor in tensors.items()}
    saved = set(sidecar["calibration"]["quantiles"])  # the built-in scorers are always required
    names = [name for name in SCORER_CLASSES if name in saved or name in SCORERS]
    model.scorers_ = {
        name: scorer.load_state(arrays) for name, scorer in make_scorers(names, model.scorer_context).items()
    }
    attributes = sidecar.get("attributes")
    model.attribute_scoring_ = None if attributes is None else load_attribute_scoring(attributes, arrays)
    return model
