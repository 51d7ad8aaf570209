"""The ``attributes`` scorer: the label-free attribute ensemble, as one part of a fitted model.

:class:`AttributeScoring` wraps what :func:`anograph.selection.choice.select_attributes`
chose for the training videos: the fitted :class:`~anograph.attributes.ensemble.AttributeEnsemble`
and the selection report (every candidate and its validation figures). It scores a video's
objects from their raw shard features, with no graph and no GCN, and saves to plain arrays and
JSON for the model artifact.

Where the selection put the motion field beside the ensemble (:mod:`anograph.attributes.motion_field`),
it holds that too, and a frame's score is the worse of its worst object's and its motion field's
(:meth:`AttributeScoring.frame_scores`).

Right after fitting it also keeps, in memory only, one ensemble per held-out fold, so that the
alert calibration (:mod:`anograph.serving.calibration`) can score each training video with a
fit that never saw it, as it does for the kNN scorers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from anograph.attributes.ensemble import AttributeEnsemble, CalibratedDensity
from anograph.attributes.motion_field import CalibratedMotionField
from anograph.attributes.objects import REQUIRED_GROUPS, ObjectAttributes, cut_attributes, object_attributes
from anograph.defaults import DEFAULT_WINDOW_SECONDS
from anograph.errors import InputError
from anograph.extraction.features.layout import FeatureLayout
from anograph.graph.windows import frame_scores, window_radius
from anograph.io.shards import VideoFeatures
from anograph.selection.choice import Selection, select_attributes

#: The scorer's name in reports, calibration and ``--scorer``.
ATTRIBUTE_SCORER = "attributes"
#: Prefix of the scorer's arrays in the model's tensor file.
TENSOR_PREFIX = "attributes."
#: Prefix, after the scorer's, of the motion field's arrays.
FIELD_PREFIX = "motion_field."


def supports_attributes(group_names: Iterable[str]) -> bool:
    """Whether shards with these feature groups carry what the attribute densities read."""
    return set(REQUIRED_GROUPS) <= set(group_names)


class AttributeScoring:
    """A fitted attribute ensemble and the selection that chose it."""

    def __init__(self, ensemble: AttributeEnsemble, selection: Mapping[str, Any],
                 motion_field: CalibratedMotionField | None = None) -> None:
        self.ensemble = ensemble
        self.selection = dict(selection)
        self.motion_field = motion_field
        self.held_out: dict[str, AttributeEnsemble] = {}
        self.held_out_fields: dict[str, CalibratedMotionField] = {}

    @classmethod
    def fit(cls, videos: Iterable[VideoFeatures], seed: int = 0,
            window_seconds: float = DEFAULT_WINDOW_SECONDS) -> AttributeScoring:
        """Select and fit the ensemble on normal ``videos`` (read once each, in order).

        Track smoothing is offered over the test window (``window_seconds`` of frames at the
        videos' frame rate), when the shards know their frame rate.
        """
        objects, radii = training_objects(videos, window_seconds)
        return cls.fit_objects(objects, radii, seed=seed)

    @classmethod
    def fit_objects(cls, objects: Sequence[ObjectAttributes], track_radii: Iterable[int],
                    seed: int = 0) -> AttributeScoring:
        """Select and fit the ensemble on the objects of normal videos, offering ``track_radii`` (0 = none)
        for track smoothing (:func:`offered_radii`)."""
        return cls.from_selection(select_attributes(objects, seed=seed, track_radii=offered_radii(track_radii)))

    @classmethod
    def from_selection(cls, selection: Selection) -> AttributeScoring:
        """The scoring of what :func:`~anograph.selection.choice.select_attributes` chose and fitted."""
        scoring = cls(selection.ensemble, selection.to_json(), selection.motion_field)
        scoring.held_out = _fold_ensembles(selection.ensemble)
        if selection.motion_field is not None and selection.scores is not None:
            folds = selection.scores.field_folds[selection.chosen.motion_field]
            scoring.held_out_fields = {video.video: field for field, fold in
                                       zip(folds, selection.scores.folds, strict=True) for video in fold}
        return scoring

    def for_camera(self, camera: str) -> AttributeScoring:
        """The scoring of ``camera``'s footage: this one, whatever the camera (one model for all)."""
        return self

    @property
    def labels(self) -> list[str]:
        """The chosen attributes of the objects."""
        return self.ensemble.labels

    @property
    def ablation_labels(self) -> list[str]:
        """The parts the ablation takes apart: the attributes, then the motion field where chosen."""
        return self.labels + ([] if self.motion_field is None else [self.motion_field.density.label])

    def frame_scores(self, video: VideoFeatures, object_scores: np.ndarray) -> np.ndarray:
        """``(n_frames,)`` each frame's score: its worst object's (NaN without objects), or its motion
        field's where that is worse (see the module docstring)."""
        per_frame = frame_scores(object_scores, video.frame_offsets())
        return per_frame if self.motion_field is None else np.fmax(per_frame, self.field_scores(video))

    def field_scores(self, video: VideoFeatures) -> np.ndarray:
        """``(n_frames,)`` the video's calibrated motion-field scores."""
        if self.motion_field is None:
            raise InputError(None, "this model has no motion field")
        if video.cell_speeds is None:
            raise InputError(video.metadata.source or None,
                             f"video {video.metadata.video!r} has no cell speeds, which this model's motion field "
                             "reads: extract it again with the default settings (cell motion on)")
        return self.motion_field.frame_scores(video.cell_speeds)

    def subset_frame_scores(self, video: VideoFeatures, subsets: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
        """``name -> (n_frames,)`` frame scores of each subset of :attr:`ablation_labels` (the ablation)."""
        field = None if self.motion_field is None else self.motion_field.density.label
        objects = {name: [label for label in labels if label != field] for name, labels in subsets.items()}
        scores = self.score_subsets(video, {name: labels for name, labels in objects.items() if labels})
        result = {}
        for name, labels in subsets.items():
            per_frame = (frame_scores(scores[name], video.frame_offsets()) if name in scores
                         else np.full(video.metadata.n_frames, np.nan))
            result[name] = np.fmax(per_frame, self.field_scores(video)) if field in labels else per_frame
        return result

    def score(self, video: VideoFeatures) -> np.ndarray:
        """``(n,)`` float64 summed calibrated attribute scores of the video's objects."""
        return self.ensemble.score(object_attributes(video))

    def score_frame(self, boxes: np.ndarray, raw_features: np.ndarray, layout: FeatureLayout,
                    frame_height: float, sources: np.ndarray | None = None,
                    frame_width: float | None = None) -> np.ndarray:
        """Scores of one frame's objects from their raw rows and sources (live scoring: no window needed).

        ``frame_width`` (pixels) lets boxes cut by the frame's right edge be told apart, as offline.

        Track smoothing spans frames, so it is left to the caller
        (:class:`anograph.serving.live_scorer.StreamScorer`); so does a density that averages
        features along tracks (:attr:`feature_radius` > 0), which :meth:`score_frames` serves.
        """
        return self.score_frames(np.zeros(len(boxes), np.int64), boxes, raw_features, layout, frame_height,
                                 sources=sources, frame_width=frame_width)

    def score_frames(self, frames: np.ndarray, boxes: np.ndarray, raw_features: np.ndarray, layout: FeatureLayout,
                     frame_height: float, sources: np.ndarray | None = None, track_ids: np.ndarray | None = None,
                     frame_width: float | None = None) -> np.ndarray:
        """Combined scores, before track smoothing, of the objects of consecutive frames (0-based ``frames``).

        Live scoring passes the frames it holds around the one it scores, with their ``track_ids``,
        so that a density averaging features along tracks sees what offline scoring sees.
        """
        frames = np.asarray(frames, np.int64).reshape(-1)
        n_frames = int(frames.max()) + 1 if len(frames) else 1
        objects = cut_attributes("live", frames, n_frames, boxes, raw_features, layout, frame_height,
                                 tracks=track_ids, sources=sources, frame_width=frame_width)
        return self.ensemble.combined(objects)

    @property
    def feature_radius(self) -> int:
        """Frames on either side whose features one object's score reads (:attr:`AttributeEnsemble.feature_radius`)."""
        return self.ensemble.feature_radius

    def score_subsets(self, video: VideoFeatures, subsets: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
        """``name -> (n,)`` object scores of each subset of the chosen attributes, by label (ablations)."""
        return self.ensemble.score_subsets(object_attributes(video), subsets)

    def held_out_for(self, video_name: str) -> AttributeScoring:
        """The scoring a fold fitted without ``video_name`` gives, or this one where there is none."""
        ensemble = self.held_out.get(video_name)
        if ensemble is None:
            return self
        return AttributeScoring(ensemble, self.selection, self.held_out_fields.get(video_name, self.motion_field))

    def state(self, prefix: str = TENSOR_PREFIX) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(JSON description, arrays)`` for the model artifact, the arrays' names starting with ``prefix``."""
        description, arrays = self.ensemble.state()
        state = {"ensemble": description, "selection": self.selection}
        arrays = {prefix + key: value for key, value in arrays.items()}
        if self.motion_field is not None:
            state["motion_field"], field_arrays = self.motion_field.state(prefix + FIELD_PREFIX)
            arrays.update(field_arrays)
        return state, arrays

    @classmethod
    def from_state(cls, description: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
                   prefix: str = TENSOR_PREFIX) -> AttributeScoring:
        own = {key[len(prefix):]: value for key, value in arrays.items()
               if key.startswith(prefix) and not key.startswith(prefix + FIELD_PREFIX)}
        field = description.get("motion_field")
        motion_field = None if field is None else CalibratedMotionField.from_state(field, arrays, prefix + FIELD_PREFIX)
        return cls(AttributeEnsemble.from_state(description["ensemble"], own), description["selection"], motion_field)


def offered_radii(track_radii: Iterable[int]) -> list[int]:
    """The track-smoothing radii the selection is offered: none and the smallest other (the test window)."""
    return sorted(set(track_radii) | {0})[:2]


def training_objects(videos: Iterable[VideoFeatures],
                     window_seconds: float = DEFAULT_WINDOW_SECONDS) -> tuple[list[ObjectAttributes], set[int]]:
    """The attribute tables of normal ``videos`` (read once each, in order) and the track-smoothing radii
    offered on them: 0 and the test window (``window_seconds`` of frames) at each known frame rate."""
    objects, radii = [], {0}
    for video in videos:
        objects.append(object_attributes(video))
        if video.metadata.fps:
            radii.add(window_radius(window_seconds, video.metadata.fps))
    return objects, radii


def _fold_ensembles(ensemble: AttributeEnsemble) -> dict[str, AttributeEnsemble]:
    """Video name -> the ensemble of the fold that held it out (only for multi-video folds)."""
    fits = getattr(ensemble, "held_out_fits_", None)
    if not fits or not all(fit.held_out for fit in fits):
        return {}
    by_video: dict[str, AttributeEnsemble] = {}
    for fold_index, fold in enumerate(fits[0].folds):
        names = {video.video for video in fold}
        fold_ensemble = AttributeEnsemble(ensemble.attributes, ensemble.calibration_quantile, ensemble.max_folds,
                                          ensemble.track_radius, ensemble.combination)
        fold_ensemble.parts_ = [
            CalibratedDensity(fit.models[fold_index], part.low, part.high)
            for fit, part in zip(fits, ensemble.parts_, strict=True)
        ]
        by_video.update(dict.fromkeys(names, fold_ensemble))
    return by_video
