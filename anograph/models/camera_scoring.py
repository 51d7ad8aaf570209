"""One attribute model per camera, for datasets that pool several fixed cameras, where their footage says so.

What is normal depends on the camera: where objects stand, how big they are at each place, how
many pixels a walking pace covers. ShanghaiTech pools 13 cameras, and one model of them all
would take a walker near one camera for as fast as a cyclist far from another, and call a place
ordinary because some other scene has objects there. Yet a camera's own footage may be thin,
and cameras that see alike gain from each other's. So where the training videos come from
several cameras (:attr:`anograph.io.shards.ShardMetadata.camera`), the label-free selection runs
for every camera on its own normal videos, and once on all of them (the *shared* model); each
camera then keeps its own ensemble only if that validates better, by more than the tie margin,
than the shared one does on the same camera's held-out videos, and uses the shared model
otherwise (:func:`fit_camera_scorings`). A video is scored by its camera's model. Every
ensemble's scores are calibrated on held-out normal objects (about 0..1 there), so the frames of
different cameras rank on one scale. Where every camera takes the shared model, that one model
serves all footage, with the comparison in its selection record.

Footage from a single camera gets one plain
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
from anograph.models.attribute_scoring import TENSOR_PREFIX, AttributeScoring, offered_radii, training_objects
from anograph.selection.choice import AUC_TIE_TOLERANCE, select_attributes


class CameraScorings:
    """A fitted :class:`AttributeScoring` per camera, routing each video to its camera's.

    Parameters
    ----------
    by_camera:
        Camera name -> its fitted scoring.
    video_cameras:
        Training video name -> its camera (so that the alert calibration finds the fold that
        held a training video out).
    comparison:
        Per camera, its own ensemble's validation against the shared model's on its videos, and
        which it uses (:func:`fit_camera_scorings`); shown in the report.
    """

    def __init__(self, by_camera: Mapping[str, AttributeScoring], video_cameras: Mapping[str, str],
                 comparison: Sequence[Mapping[str, Any]] = ()) -> None:
        if not by_camera:
            raise InputError(None, "a per-camera attribute model needs at least one camera")
        self.by_camera = dict(by_camera)
        self.video_cameras = dict(video_cameras)
        self.comparison = [dict(entry) for entry in comparison]

    @property
    def cameras(self) -> list[str]:
        return sorted(self.by_camera)

    def for_camera(self, camera: str) -> AttributeScoring:
        """The scoring fitted on ``camera``'s normal footage; an error naming the cameras it knows otherwise."""
        if camera not in self.by_camera:
            raise InputError(None, f"this model was trained on the footage of cameras {', '.join(self.cameras)} "
                                   f"and has no model for camera {camera!r}: score footage of a camera it was "
                                   "trained on (anograph score --camera NAME)")
        return self.by_camera[camera]

    @property
    def labels(self) -> list[str]:
        """Every camera's chosen attributes, each once, in the order first chosen."""
        return list(dict.fromkeys(label for camera in self.cameras for label in self.by_camera[camera].labels))

    @property
    def ablation_labels(self) -> list[str]:
        """Every camera's ablation parts (:attr:`AttributeScoring.ablation_labels`), each once."""
        return list(dict.fromkeys(label for camera in self.cameras
                                  for label in self.by_camera[camera].ablation_labels))

    def frame_scores(self, video: VideoFeatures, object_scores: np.ndarray) -> np.ndarray:
        """The video's frame scores by its camera's model (:meth:`AttributeScoring.frame_scores`)."""
        return self.for_camera(video.metadata.camera).frame_scores(video, object_scores)

    def subset_frame_scores(self, video: VideoFeatures, subsets: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
        """The ablation's frame scores as the video's camera has its parts: a part its camera did not
        choose is left out, and a subset with nothing left scores no frame (NaN)."""
        scoring = self.for_camera(video.metadata.camera)
        own = {name: [label for label in labels if label in scoring.ablation_labels] for name, labels in subsets.items()}
        scores = scoring.subset_frame_scores(video, {name: labels for name, labels in own.items() if labels})
        return {name: scores.get(name, np.full(video.metadata.n_frames, np.nan)) for name in subsets}

    @property
    def selection(self) -> dict[str, Any]:
        """Each camera's selection report (:meth:`anograph.selection.choice.Selection.to_json`) and the comparison."""
        return {"cameras": {camera: self.by_camera[camera].selection for camera in self.cameras},
                "camera_choice": self.comparison}

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
        """``(JSON description, arrays)``: each distinct model once (cameras on the shared model share its
        entry), its arrays named ``attributes.model<k>.``, and each camera's model index."""
        models: list[AttributeScoring] = []
        for camera in self.cameras:
            if not any(model is self.by_camera[camera] for model in models):
                models.append(self.by_camera[camera])
        description: dict[str, Any] = {"models": [], "video_cameras": self.video_cameras,
                                       "camera_choice": self.comparison, "cameras": {}}
        arrays: dict[str, np.ndarray] = {}
        for index, model in enumerate(models):
            own, own_arrays = model.state(prefix=_model_prefix(index))
            description["models"].append(own)
            arrays.update(own_arrays)
        description["cameras"] = {camera: next(index for index, model in enumerate(models)
                                                if model is self.by_camera[camera]) for camera in self.cameras}
        return description, arrays

    @classmethod
    def from_state(cls, description: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> CameraScorings:
        models = [AttributeScoring.from_state(entry, arrays, prefix=_model_prefix(index))
                  for index, entry in enumerate(description["models"])]
        by_camera = {camera: models[index] for camera, index in description["cameras"].items()}
        return cls(by_camera, description.get("video_cameras", {}), description.get("camera_choice", ()))


def _model_prefix(index: int) -> str:
    return f"{TENSOR_PREFIX}model{index}."


def fit_attribute_scoring(videos: Iterable[VideoFeatures], seed: int = 0,
                          window_seconds: float = DEFAULT_WINDOW_SECONDS) -> AttributeScoring | CameraScorings:
    """Select and fit the attribute scorer on normal ``videos`` (read once each, in order): one model for
    footage of one camera; for several, :func:`fit_camera_scorings` (see the module docstring)."""
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
                        track_radii: Mapping[str, Iterable[int]], seed: int = 0) -> AttributeScoring | CameraScorings:
    """Each camera's own ensemble, or the shared one where its own does not validate better (module docstring).

    The shared selection runs on every camera's objects; each camera's own on its objects alone.
    A camera keeps its own when its validation mean beats the shared ensemble's mean on that
    camera's held-out videos by more than :data:`~anograph.selection.choice.AUC_TIE_TOLERANCE`
    (ties go to the shared model: one model, more footage). ``track_radii`` are each camera's
    offered smoothing radii (:func:`~anograph.models.attribute_scoring.offered_radii`).
    """
    every = [video for videos in objects_by_camera.values() for video in videos]
    shared = select_attributes(every, seed=seed, track_radii=offered_radii(
        radius for radii in track_radii.values() for radius in radii))
    shared_scoring = AttributeScoring.from_selection(shared)
    by_camera: dict[str, AttributeScoring] = {}
    comparison = []
    for camera in sorted(objects_by_camera):
        videos = objects_by_camera[camera]
        own = select_attributes(videos, seed=seed, track_radii=offered_radii(track_radii.get(camera, {0})))
        on_camera = shared.validate_on({video.video for video in videos})
        use_own = own.chosen.mean_auc > on_camera.mean_auc + AUC_TIE_TOLERANCE
        comparison.append({"camera": camera, "videos": len(videos), "own": own.chosen.to_json(),
                           "shared": on_camera.to_json(), "uses": "own" if use_own else "shared"})
        by_camera[camera] = AttributeScoring.from_selection(own) if use_own else shared_scoring
    if all(entry["uses"] == "shared" for entry in comparison):
        shared_scoring.selection["camera_choice"] = comparison
        return shared_scoring
    video_cameras = {video.video: camera for camera, videos in objects_by_camera.items() for video in videos}
    return CameraScorings(by_camera, video_cameras, comparison)


def load_attribute_scoring(description: Mapping[str, Any],
                           arrays: Mapping[str, np.ndarray]) -> AttributeScoring | CameraScorings:
    """The attribute scorer a model artifact describes: per camera where it has several."""
    if "cameras" in description:
        return CameraScorings.from_state(description, arrays)
    return AttributeScoring.from_state(description, arrays)
