"""Extraction settings: which detector and node features to use, and the shard identity.

A shard's storage key carries a fingerprint of everything that determines its content
(detector name, settings and weights hash; feature extractor settings) and the video's
content hash, so changing the video, the detector or its weights writes new shards instead
of silently reusing stale ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from anograph.errors import ModelArtifactError
from anograph.extraction.detectors import create_detector
from anograph.extraction.detectors.base import Detector
from anograph.extraction.features.extractor import NodeFeatureExtractor


@dataclass
class ExtractionSettings:
    """What turns a video into a shard.

    Parameters
    ----------
    detector:
        Registry name (:data:`anograph.extraction.detectors.DETECTOR_CLASSES`): ``"yolox"`` (COCO YOLOX on
        ONNX Runtime), ``"motion"`` (weight-free), ``"torchvision"``, ``"detectron2"`` or ``"precomputed"``.
    detector_options:
        Keyword options for the detector, e.g. ``{"weights": "/models/yolox_nano.onnx"}``.
    appearance:
        Include the MobileNetV2 RoI appearance embedding in the node features.
    appearance_options:
        Keyword options for :class:`anograph.extraction.features.appearance.AppearanceEmbedder`.
    motion:
        Include optical-flow and tracked-velocity motion features (groups ``motion``,
        ``frame_flow``, ``track``).
    motion_options:
        Keyword options for :class:`anograph.extraction.features.motion.MotionFeatures`, e.g.
        ``{"flow_method": "farneback"}`` or ``{"flow_preset": "fast"}``, ``{"track_window": 10}``.
    flow_stats:
        Include the ``flow_stats`` group (box flow percentiles and moving-pixel statistics).
    motion_boxes:
        Add objects for moving regions the detector missed. On by default: detectors trained on
        everyday classes miss exactly the unusual objects anomaly detection is after, so moving
        regions no detection explains become objects of their own (as AI-VAD adds boxes from
        frame differences).
    motion_boxes_options:
        Keyword options for :class:`anograph.extraction.features.motion_boxes.MotionBoxes`.
    cell_motion:
        Give every frame the moving speed of each cell of a fixed grid
        (:mod:`anograph.extraction.features.cell_motion`), which the ``attributes`` scorer may read
        beside the objects: motion no detection and no moving region carries. On by default.
    cell_motion_options:
        Keyword options for :class:`anograph.extraction.features.cell_motion.CellMotion`.

    Tiled detection is a detector option: ``detector_options={"tiles": 2}`` for YOLOX.
    """

    detector: str = "motion"
    detector_options: dict[str, Any] = field(default_factory=dict)
    appearance: bool = True
    appearance_options: dict[str, Any] = field(default_factory=dict)
    motion: bool = True
    motion_options: dict[str, Any] = field(default_factory=dict)
    flow_stats: bool = True
    motion_boxes: bool = True
    motion_boxes_options: dict[str, Any] = field(default_factory=dict)
    cell_motion: bool = True
    cell_motion_options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> ExtractionSettings:
        return cls(**value)

    def build(self) -> tuple[Detector, NodeFeatureExtractor]:
        """Instantiate the detector and the node-feature extractor."""
        from anograph.extraction.features.appearance import AppearanceEmbedder
        from anograph.extraction.features.cell_motion import CellMotion
        from anograph.extraction.features.motion import MotionFeatures
        from anograph.extraction.features.motion_boxes import MotionBoxes

        detector = create_detector(self.detector, **self.detector_options)
        embedder = AppearanceEmbedder(**self.appearance_options) if self.appearance else None
        motion = MotionFeatures(**self.motion_options) if self.motion else False
        motion_boxes = MotionBoxes(**self.motion_boxes_options) if self.motion_boxes else False
        cell_motion = CellMotion(**self.cell_motion_options) if self.cell_motion else False
        extractor = NodeFeatureExtractor(
            appearance=embedder, motion=motion, flow_stats=self.flow_stats, motion_boxes=motion_boxes,
            cell_motion=cell_motion,
        )
        return detector, extractor


def extraction_settings(detector: str, detector_options: dict[str, Any] | None = None, appearance: bool = True,
                        appearance_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-friendly :class:`ExtractionSettings` that flows pass on (options default to none)."""
    return ExtractionSettings(detector=detector, detector_options=detector_options or {}, appearance=appearance,
                              appearance_options=appearance_options or {}).to_dict()


def extraction_fingerprint(detector: Detector, extractor: NodeFeatureExtractor) -> str:
    """Short stable hash of everything that determines a shard's content.

    Paths are left out on purpose: the same weights at another path give the same shards.
    """
    description = {"detector": detector.describe(), "features": extractor.describe()}
    for part in description.values():
        for path_key in ("weights", "weights_path", "path"):
            part.pop(path_key, None)
    canonical = json.dumps(description, sort_keys=True, default=str)
    return f"{detector.name}-{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"


CONTENT_HASH_CHARS = 16  # 64 bits of the video's SHA-256: collisions are out of reach for any dataset


def shard_key(fingerprint: str, split: str, video_name: str, content_sha256: str) -> str:
    """Storage key of one video's shard: ``shards/<fingerprint>/<split>/<video>.<content>.parquet``.

    It is derived from everything that determines the shard: the video's content hash
    (:func:`anograph.io.content_hash.video_content_hash`, first 16 hex digits) and the extraction
    fingerprint (detector name, settings and weights hash, feature settings). So a changed
    video, detector or weights gets a new key and is extracted again, and an unchanged one
    finds its finished shard. The video name is kept for people reading the bucket.
    """
    return f"shards/{fingerprint}/{split}/{video_name}.{content_sha256[:CONTENT_HASH_CHARS]}.parquet"


def fingerprint_of(key: str) -> str:
    """The extraction fingerprint in a key made by :func:`shard_key`."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "shards":
        raise ValueError(f"{key!r} is not a shard key (shards/<fingerprint>/<split>/<video>.<content>.parquet)")
    return parts[1]


#: The part of a feature description that describes the cell speeds (:mod:`anograph.extraction.features.cell_motion`).
CELL_MOTION = "cell_motion"

#: Settings a feature description records since they were introduced, by their path in it, with
#: the value in effect before: features described without one were made with that value. A model
#: trained before keeps scoring features rebuilt with it (:func:`legacy_options`), and features of
#: the newer default are told apart from its own.
LEGACY_VALUES: dict[str, Any] = {
    "motion.flow.min_moving_speed": 0.0,  # the floor was half a pixel a frame whatever the footage
    "flow.min_moving_speed": 0.0,
    "motion_boxes.border_margin": 0,  # motion regions grew from the frame's edge
    "motion.flow.min_height": 0,  # the flow ran on every frame as it was, however small
    "flow.min_height": 0,
    "appearance.max_height": 0,  # the appearance pass ran on every frame at its own size, however large
}
#: Where each legacy setting goes among :class:`ExtractionSettings`' options to rebuild it.
LEGACY_OPTIONS = {"motion.flow.min_moving_speed": ("motion_options", "min_moving_speed"),
                  "motion_boxes.border_margin": ("motion_boxes_options", "border_margin"),
                  "motion.flow.min_height": ("motion_options", "min_flow_height"),
                  "appearance.max_height": ("appearance_options", "max_height")}


def flat_description(description: Mapping[str, Any]) -> dict[str, Any]:
    """A feature description (:meth:`NodeFeatureExtractor.describe`) as ``{"motion_boxes.max_iou": 0.3, ...}``,
    compared as JSON (a tuple and the list it was saved as are alike)."""

    def flat(value: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(value, dict):
            return {key: item for name, child in value.items() for key, item in flat(child, f"{prefix}{name}.").items()}
        return {prefix.rstrip("."): value}

    return flat(json.loads(json.dumps(description, sort_keys=True, default=str)))


def predates(described: Mapping[str, Any], key: str) -> bool:
    """Whether a flat description (:func:`flat_description`) was made before the legacy setting ``key``
    was recorded: it describes the part the setting belongs to, without the setting."""
    part = key.split(".")[0]
    return key in LEGACY_VALUES and key not in described and any(other.startswith(part + ".") for other in described)


def legacy_options(trained: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"motion_boxes_options": {"border_margin": 0}, ...}``: the options that rebuild features as a model
    trained before a setting was recorded had them (empty for a current record, or none at all)."""
    recorded = flat_description(trained) if trained else {}
    options: dict[str, dict[str, Any]] = {}
    for key, (option, name) in LEGACY_OPTIONS.items():
        if predates(recorded, key):
            options.setdefault(option, {})[name] = LEGACY_VALUES[key]
    return options


def extraction_differences(trained: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """``"motion_boxes.max_covered_fraction: 0.5 -> 0.25"`` for each setting two feature descriptions differ in.

    The descriptions are :meth:`NodeFeatureExtractor.describe` results (see :func:`flat_description`);
    nested settings are named by their path. A setting one of them predates
    (:data:`LEGACY_VALUES`) is taken at the value it had then.
    """
    before, after = flat_description(trained), flat_description(now)
    # Cell speeds sit beside the objects and change none of their features: a description without
    # them (made before they were read, or with them off) differs in nothing a model reads from the objects.
    if not any(key.startswith(CELL_MOTION + ".") for key in before) or not any(
            key.startswith(CELL_MOTION + ".") for key in after):
        before = {key: item for key, item in before.items() if not key.startswith(CELL_MOTION + ".")}
        after = {key: item for key, item in after.items() if not key.startswith(CELL_MOTION + ".")}

    def value(described: dict[str, Any], key: str) -> Any:
        return LEGACY_VALUES[key] if predates(described, key) else described.get(key, "absent")

    keys = sorted(set(before) | set(after))
    return [f"{key}: {value(before, key)} -> {value(after, key)}" for key in keys if value(before, key) != value(after, key)]


def check_same_extraction(trained: Mapping[str, Any] | None, now: Mapping[str, Any] | None,
                          location: str | None, what: str) -> None:
    """Refuse features made with other extraction settings than a model's training shards.

    A model scores features as its training shards had them; features from another
    optical-flow setting or motion-region threshold (a newer anograph's defaults, say) would be
    scored silently wrong. ``trained`` is the model's record (empty for a model saved before it
    kept one: nothing to compare), ``now`` the other features' description, ``what`` names them.
    """
    if not trained or not now:
        return
    differences = extraction_differences(trained, now)
    if differences:
        shown = "; ".join(differences[:4]) + ("; ..." if len(differences) > 4 else "")
        raise ModelArtifactError(location, f"{what} differ from the model's training shards in their extraction "
                                           f"settings ({shown}); retrain the model on features of these settings "
                                           "(anograph run)")
