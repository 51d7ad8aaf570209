"""Held-out pseudo-anomaly validation of attribute combinations, at the frame level.

For every training fold (:func:`anograph.attributes.ensemble.held_out_parts`), every
held-out video is scored twice by densities fitted without it: as it is, and with one
object per frame replaced by its pseudo-anomalous copy (:mod:`.pseudo_anomalies`). Each
frame takes its worst object, as at test time. The figure of a combination and a kind is
the ROC AUC between the clean frames and the altered ones, over all held-out frames: it
asks what the product is judged on (ranking frames), and an attribute that only adds noise
to normal frames lowers it, as it would lower a real test AUC.

Raw scores are computed once per attribute, fold, video and kind (:class:`ValidationScores`);
a combination's figure then only combines calibrated scores, so many combinations cost little.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from anograph.attributes.ensemble import CALIBRATION_QUANTILE, HeldOutFits, combine_scores
from anograph.attributes.motion_field import CalibratedMotionField, MotionFieldDensity, imprint
from anograph.attributes.objects import ObjectAttributes
from anograph.attributes.track_smoothing import smooth_along_tracks
from anograph.selection.pseudo_anomalies import (
    GENERATORS,
    JOINING_KINDS,
    MISSED,
    PseudoAnomalyContext,
    eligible_rows,
    speed_up,
)

#: The score of a frame with nothing to score, below every real score.
NO_SCORE = -1e9
#: Share of a held-out video's tracks altered for a pseudo-anomaly kind.
ALTERED_TRACK_SHARE = 1 / 3


def every_frame(objects: ObjectAttributes, scores: np.ndarray) -> np.ndarray:
    """``(n_frames,)`` each frame's worst object score, ``-inf`` for a frame without objects."""
    maxima = np.full(objects.n_frames, -np.inf)
    np.maximum.at(maxima, objects.frames, scores)
    return maxima


def with_rows_of(clean: ObjectAttributes, altered: ObjectAttributes, rows: np.ndarray,
                 fields: Sequence[str]) -> ObjectAttributes:
    """``clean`` with the ``fields`` of the objects ``rows`` taken from ``altered``."""
    changes = {}
    for name in fields:
        values = getattr(clean, name).copy()
        values[rows] = getattr(altered, name)[rows]
        changes[name] = values
    return clean.with_changes(**changes)


class ValidationScores:
    """Calibrated held-out scores of clean and altered training videos, per attribute and kind.

    Parameters
    ----------
    folds:
        The folds every :class:`HeldOutFits` was made on.
    kinds:
        Pseudo-anomaly kinds to make.
    seed:
        Seeds the generators and the choice of the altered object in each frame.
    """

    def __init__(self, folds: Sequence[Sequence[ObjectAttributes]], kinds: Sequence[str], seed: int = 0) -> None:
        self.folds = [list(fold) for fold in folds]
        self.kinds = list(kinds)
        rng = np.random.default_rng(seed)
        every = [video for fold in self.folds for video in fold]
        context = PseudoAnomalyContext(class_mass=np.concatenate([v.class_scores for v in every]).sum(axis=0))
        # The altered tracks of each kind, shared by all attributes.
        self.altered: dict[str, list[list[ObjectAttributes]]] = {}
        self.chosen: dict[str, list[list[np.ndarray]]] = {}
        for kind in self.kinds:
            generate, changes = GENERATORS[kind]
            every_altered = [[generate(video, rng, context) for video in fold] for fold in self.folds]
            self.chosen[kind] = [[self._chosen_tracks(video, kind, rng) for video in fold] for fold in self.folds]
            # Only the chosen objects are altered, so that their neighbours stay as they were
            # (the interaction density reads the neighbours).
            self.altered[kind] = [
                [with_rows_of(video, altered, chosen, changes) for video, altered, chosen in zip(*parts, strict=True)]
                for parts in zip(self.folds, every_altered, self.chosen[kind], strict=True)
            ]
        self._clean: dict[int, list[list[np.ndarray]]] = {}
        self._bad: dict[tuple[int, str], list[list[np.ndarray]]] = {}
        self._seed = seed
        #: Per motion-field variant (its label), the field fitted without each fold.
        self.field_folds: dict[str, list[CalibratedMotionField]] = {}
        self._field_clean: dict[str, list[list[np.ndarray]]] = {}
        self._field_bad: dict[tuple[str, str], list[list[np.ndarray]]] = {}
        self._missed: list[list[ObjectAttributes]] = []

    @staticmethod
    def _chosen_tracks(objects: ObjectAttributes, kind: str, rng: np.random.Generator) -> np.ndarray:
        """Rows of a random :data:`ALTERED_TRACK_SHARE` of the eligible tracks (an untracked object is its own).

        Whole tracks are altered, as a real anomalous object is anomalous over its track
        (a track replayed faster, played backwards, ...), so that track smoothing is judged
        on what it would meet.
        """
        eligible = np.nonzero(eligible_rows(objects, kind))[0]
        if not len(eligible):
            return eligible.astype(np.int64)
        tracks = objects.tracks[eligible]
        identity = np.where(tracks >= 0, tracks, -1 - eligible)  # untracked rows: one track each
        unique = np.unique(identity)
        picked = unique[rng.random(len(unique)) < ALTERED_TRACK_SHARE]
        if not len(picked):
            picked = unique[rng.integers(len(unique))][None]
        return eligible[np.isin(identity, picked)].astype(np.int64)

    @property
    def has_cells(self) -> bool:
        """Whether every held-out video has cell speeds (the motion field can be validated)."""
        return all(video.cell_speeds is not None for fold in self.folds for video in fold)

    def add_motion_field(self, per_place: bool = False) -> str:
        """Score every held-out video's cells, clean and altered, with a motion field fitted without it.

        Each kind's altered objects are written into the cells they cover (:func:`imprint`), and
        the ``missed`` kind is made (on the first call): a third of the tracks replayed twice as
        fast, as the ``speed`` kind, and taken out of the object list, so that only the cells still
        see them (an anomalous object the detector missed). Calibrated on the clean held-out frames.
        Returns the variant's label, the key :meth:`auc` takes it by.
        """
        if not self._missed:
            rng = np.random.default_rng(self._seed + 1)
            self.chosen[MISSED] = [[self._chosen_tracks(video, "speed", rng) for video in fold] for fold in self.folds]
            self._missed = [[speed_up(video, rng, None) for video in fold] for fold in self.folds]
        densities = [MotionFieldDensity(per_place).fit([video for other in self.folds if other is not fold
                                                        for video in other]) for fold in self.folds]
        label = densities[0].label
        raw_clean = [[density.frame_scores(video.cell_speeds) for video in fold]
                     for density, fold in zip(densities, self.folds, strict=True)]
        held_out = np.concatenate([scores for fold in raw_clean for scores in fold])
        low, high = float(held_out.min()), float(np.quantile(held_out, CALIBRATION_QUANTILE))
        self.field_folds[label] = [CalibratedMotionField(density, low, high) for density in densities]
        self._field_clean[label] = [[(scores - low) / (high - low) for scores in fold] for fold in raw_clean]
        altered = {kind: self.altered[kind] for kind in self.kinds}
        altered[MISSED] = self._missed
        for kind, altered_folds in altered.items():
            self._field_bad[(label, kind)] = [
                [field.frame_scores(imprint(video.cell_speeds, changed.rows(chosen)))
                 for video, changed, chosen in zip(fold, changed_fold, self.chosen[kind][index], strict=True)]
                for index, (field, fold, changed_fold) in enumerate(
                    zip(self.field_folds[label], self.folds, altered_folds, strict=True))
            ]
        return label

    def add(self, key: int, fits: HeldOutFits) -> None:
        """Score every held-out video, clean and altered, with ``fits`` (stored under ``key``)."""
        low, high = fits.calibration(CALIBRATION_QUANTILE)
        scale = lambda values: (values - low) / (high - low)  # noqa: E731
        clean = [[scale(values) for values in fold] for fold in fits.scores]
        reads = set(type(fits.models[0]).reads)
        altered = {}
        for kind in self.kinds:
            _, changes = GENERATORS[kind]
            altered[kind] = clean if not reads & set(changes) else [
                [scale(fits.score(index, video)) for video in fold] for index, fold in enumerate(self.altered[kind])
            ]
        self.add_scores(key, clean, altered)

    def add_scores(self, key: int, clean: Sequence[Sequence[np.ndarray]],
                   altered: Mapping[str, Sequence[Sequence[np.ndarray]]]) -> None:
        """Store calibrated held-out scores made elsewhere under ``key``: per fold and video, clean and per kind
        altered (a scorer outside the attribute densities, such as the GCN in ``bench/gcn_validation.py``)."""
        self._clean[key] = [list(fold) for fold in clean]
        for kind in self.kinds:
            self._bad[(key, kind)] = [list(fold) for fold in altered[kind]]

    def auc(self, keys: Sequence[int], kind: str, track_radius: int = 0, combination: str = "sum",
            videos: Collection[str] | None = None, motion_field: str | None = None) -> float:
        """Frame-level AUC of the attributes ``keys``, combined by ``combination``, on pseudo-anomalies of ``kind``.

        ``track_radius`` smooths the combined scores along tracks first, clean and altered alike
        (:func:`anograph.attributes.track_smoothing.smooth_along_tracks`). ``videos`` (names)
        restricts the figure to those held-out videos (one camera's, say); default all.
        ``motion_field`` (a variant's label) puts that motion field beside the objects (:meth:`add_motion_field` first):
        a frame takes the worse of its worst object and its field score. On the ``missed`` kind
        the altered tracks' objects are left out of clean and altered frames alike.
        """
        clean_frames, altered_frames = [], []
        for fold_index, fold in enumerate(self.folds):
            for video_index, video in enumerate(fold):
                if videos is not None and video.video not in videos:
                    continue
                clean = combine_scores([self._clean[key][fold_index][video_index] for key in keys], combination)
                chosen = self.chosen[kind][fold_index][video_index]
                if not len(chosen):
                    continue
                if kind == MISSED:
                    clean_frames.append(self._missed_frames(video, clean, chosen, track_radius, fold_index,
                                                            video_index, motion_field, altered=False))
                    altered_frames.append(self._missed_frames(video, clean, chosen, track_radius, fold_index,
                                                              video_index, motion_field, altered=True))
                    continue
                altered = clean.copy()
                altered[chosen] = combine_scores([self._bad[(key, kind)][fold_index][video_index][chosen] for key in keys],
                                                 combination)
                # The altered objects replace the originals: a change an attribute cannot see, or
                # sees only as noise, leaves the figure at 0.5 rather than rewarding the noise.
                clean = smooth_along_tracks(video, clean, track_radius)
                altered = smooth_along_tracks(video, altered, track_radius)
                if kind in JOINING_KINDS:
                    altered = np.maximum(clean, altered)
                frames_with_choice = np.unique(video.frames[chosen])
                clean_per_frame, altered_per_frame = every_frame(video, clean), every_frame(video, altered)
                if motion_field:
                    clean_per_frame = np.maximum(clean_per_frame,
                                                 self._field_clean[motion_field][fold_index][video_index])
                    altered_per_frame = np.maximum(altered_per_frame,
                                                   self._field_bad[(motion_field, kind)][fold_index][video_index])
                clean_frames.append(clean_per_frame[frames_with_choice])
                altered_frames.append(altered_per_frame[frames_with_choice])
        if not clean_frames:
            return float("nan")
        clean_values, altered_values = np.concatenate(clean_frames), np.concatenate(altered_frames)
        labels = np.r_[np.zeros(len(clean_values)), np.ones(len(altered_values))]
        return float(roc_auc_score(labels, np.r_[clean_values, altered_values]))

    def _missed_frames(self, video: ObjectAttributes, scores: np.ndarray, chosen: np.ndarray, track_radius: int,
                       fold_index: int, video_index: int, motion_field: str | None, altered: bool) -> np.ndarray:
        """Scores of the frames of a ``missed`` pseudo-anomaly, its objects out of the list (see :meth:`auc`)."""
        others = np.ones(len(video), bool)
        others[chosen] = False
        kept = video.rows(others)
        per_frame = every_frame(kept, smooth_along_tracks(kept, scores[others], track_radius))
        if motion_field:
            field = (self._field_bad[(motion_field, MISSED)] if altered
                     else self._field_clean[motion_field])[fold_index][video_index]
            per_frame = np.maximum(per_frame, field)
        # A frame left with no object and no field scores below every other (the AUC needs finite scores).
        return np.maximum(per_frame[np.unique(video.frames[chosen])], NO_SCORE)
