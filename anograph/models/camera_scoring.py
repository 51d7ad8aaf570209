"""One attribute model per camera, for datasets that pool several fixed cameras.

What is normal depends on the camera: where objects stand, how big they are at each place, how
many pixels a walking pace covers. ShanghaiTech pools 13 cameras, and one model of them all
would take a walker near one camera for as fast as a cyclist far from another, and call a place
ordinary because some other scene has objects there. So where the training videos come from
several cameras (:attr:`anograph.io.shards.ShardMetadata.camera`), each camera gets its own
label-free selection and ensemble (:class:`~anograph.models.attribute_scoring.AttributeScoring`),
chosen and fitted on that camera's normal videos alone, and a video is scored by its camera's.
The choice may differ between cameras, as it should: a setting that helps one scene can hurt
another. Every ensemble's scores are calibrated on its own camera's held-out normal objects
(about 0..1 there), so the frames of different cameras rank on one scale.

Footage from a single camera (every dataset but the pooled multi-scene ones) gets one plain
:class:`~anograph.models.attribute_scoring.AttributeScoring`, exactly as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from anograph.attributes.objects import ObjectAttributes
from anograph.defaults import DEFAULT_WINDOW_SECONDS
from anograph.errors import InputError
from anograph.io.shards import VideoFeatures
from anograph.models.attribute_scoring import TENSOR_PREFIX, AttributeScoring, training_objects


class CameraScorings:
    """A fitted :class:`AttributeScoring` per camera, routing each video to its camera's.

    Parameters
    ----------
    by_camera:
        Camera name -> its fitted scoring.
    video_cameras:
        Training video name -> its camera (so that the alert calibration finds the fold that
        held a training video out).
    """

    def __init__(self, by_camera: Mapping[str, AttributeScoring], video_cameras: Mapping[str, str]) -> None:
        if not by_camera:
            raise InputError(None, "a per-camera attribute model needs at least one camera")
        self.by_camera = dict(by_camera)
        self.video_cameras = dict(video_cameras)

    @property
    def cameras(self) -> list[str]:
        return sorted(self.by_camera)

    def for_camera(self, camera: str) -> AttributeScoring:
        """The scoring fitted on ``camera``'s normal footage; an error naming the cameras it knows otherwise."""
        if camera not in self.by_camera:
            raise InputError(None, f"this model has one attribute model per camera ({', '.join(self.cameras)}) "
                                   f"and none for camera {camera!r}: score footage of a camera it was trained on "
                                   "(anograph score --camera NAME)")
        return self.by_camera[camera]

    @property
    def labels(self) -> list[str]:
        """Every camera's chosen attributes, each once, in the order first chosen."""
        return list(dict.fromkeys(label for camera in self.cameras for label in self.by_camera[camera].labels))

    @property
    def selection(self) -> dict[str, Any]:
        """Each camera's selection report (:meth:`anograph.selection.choice.Selection.to_json`)."""
        return {"cameras": {camera: self.by_camera[camera].selection for camera in self.cameras}}

    def score(self, video: VideoFeatures) -> np.ndarray:
        """``(n,)`` the video's object scores by its camera's ensemble."""
        return self.for_camera(video.metadata.camera).score(video)

    def score_subsets(self, video: VideoFeatures, subsets: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
        """The ablation's subsets (by label, over :attr:`labels`) as the video's camera has them: an attribute
        its camera did not choose is left out, and a subset with nothing left scores every object 0."""
        scoring = self.for_camera(video.metadata.camera)
        own = {name: [label for label in labels if label in scoring.labels] for name, labels in subsets.items()}
        scores = scoring.score_subsets(video, {name: labels for name, labels in own.items() if labels})
        return {name: scores.get(name, np.zeros(video.n_objects)) for name in subsets}

    def held_out_for(self, video_name: str) -> AttributeScoring:
        """The scoring of a training video's camera fitted without it (:meth:`AttributeScoring.held_out_for`)."""
        return self.for_camera(self.video_cameras[video_name]).held_out_for(video_name)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(JSON description, arrays)``: each camera's, its arrays named ``attributes.camera<i>.``."""
        description: dict[str, Any] = {"cameras": [], "video_cameras": self.video_cameras}
        arrays: dict[str, np.ndarray] = {}
        for index, camera in enumerate(self.cameras):
            own, own_arrays = self.by_camera[camera].state(prefix=_camera_prefix(index))
            description["cameras"].append({"camera": camera, **own})
            arrays.update(own_arrays)
        return description, arrays

    @classmethod
    def from_state(cls, description: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> CameraScorings:
        by_camera = {entry["camera"]: AttributeScoring.from_state(entry, arrays, prefix=_camera_prefix(index))
                     for index, entry in enumerate(description["cameras"])}
        return cls(by_camera, description.get("video_cameras", {}))


def _camera_prefix(index: int) -> str:
    return f"{TENSOR_PREFIX}camera{index}."


def fit_attribute_scoring(videos: Iterable[VideoFeatures], seed: int = 0,
                          window_seconds: float = DEFAULT_WINDOW_SECONDS) -> AttributeScoring | CameraScorings:
    """Select and fit the attribute scorer on normal ``videos`` (read once each, in order): one model for
    footage of one camera, one per camera where the videos come from several (see the module docstring)."""
    by_camera: dict[str, list[ObjectAttributes]] = {}
    radii: dict[str, set[int]] = {}
    for video in videos:
        objects, video_radii = training_objects([video], window_seconds)
        by_camera.setdefault(video.metadata.camera, []).extend(objects)
        radii.setdefault(video.metadata.camera, set()).update(video_radii)
    if len(by_camera) == 1:
        (camera, objects), = by_camera.items()
        return AttributeScoring.fit_objects(objects, radii[camera], seed=seed)
    return fit_camera_scorings(by_camera, radii, seed=seed)


def fit_camera_scorings(objects_by_camera: Mapping[str, Sequence[ObjectAttributes]],
                        track_radii: Mapping[str, Iterable[int]], seed: int = 0) -> CameraScorings:
    """One :meth:`AttributeScoring.fit_objects` per camera, on that camera's normal objects and radii."""
    video_cameras = {objects.video: camera for camera, videos in objects_by_camera.items() for objects in videos}
    return CameraScorings({camera: AttributeScoring.fit_objects(videos, track_radii.get(camera, {0}), seed=seed)
                           for camera, videos in objects_by_camera.items()}, video_cameras)


def load_attribute_scoring(description: Mapping[str, Any],
                           arrays: Mapping[str, np.ndarray]) -> AttributeScoring | CameraScorings:
    """The attribute scorer a model artifact describes: per camera where it has several."""
    if "cameras" in description:
        return CameraScorings.from_state(description, arrays)
    return AttributeScoring.from_state(description, arrays)
