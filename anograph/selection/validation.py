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
from anograph.attributes.objects import ObjectAttributes
from anograph.attributes.track_smoothing import smooth_along_tracks
from anograph.selection.pseudo_anomalies import GENERATORS, JOINING_KINDS, PseudoAnomalyContext, eligible_rows

#: Share of a held-out video's tracks altered for a pseudo-anomaly kind.
ALTERED_TRACK_SHARE = 1 / 3


def frame_maxima(objects: ObjectAttributes, scores: np.ndarray) -> np.ndarray:
    """Each frame's worst object score; frames without objects are left out."""
    maxima = np.full(objects.n_frames, -np.inf)
    np.maximum.at(maxima, objects.frames, scores)
    return maxima[np.isfinite(maxima)]


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
            videos: Collection[str] | None = None) -> float:
        """Frame-level AUC of the attributes ``keys``, combined by ``combination``, on pseudo-anomalies of ``kind``.

        ``track_radius`` smooths the combined scores along tracks first, clean and altered alike
        (:func:`anograph.attributes.track_smoothing.smooth_along_tracks`). ``videos`` (names)
        restricts the figure to those held-out videos (one camera's, say); default all.
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
                keep = np.isin(video.frames, frames_with_choice)
                sub = video.rows(keep)
                clean_frames.append(frame_maxima(sub, clean[keep]))
                altered_frames.append(frame_maxima(sub, altered[keep]))
        if not clean_frames:
            return float("nan")
        clean_values, altered_values = np.concatenate(clean_frames), np.concatenate(altered_frames)
        labels = np.r_[np.zeros(len(clean_values)), np.ones(len(altered_values))]
        return float(roc_auc_score(labels, np.r_[clean_values, altered_values]))
