"""The model's input: which feature columns it reads, and how they are standardised.

Shards store every feature group of their layout (appearance, class, motion, ...);
:class:`FeatureSelection` picks the groups a model uses and checks that all training videos
share one layout. :class:`GroupStandardizer` then z-scores the selected columns with moments
fitted on the training objects, either in memory or streamed over shards (one pass, via
:func:`anograph.graph.batches.feature_moments`), so bounded-memory training fits the same
standardiser as in-memory training.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from anograph.errors import InputError
from anograph.extraction.features.layout import FeatureLayout
from anograph.graph.batches import feature_moments
from anograph.io.shards import ShardMetadata, VideoFeatures

FEATURE_SCALINGS = ("column", "group")
# Standard deviations below this are treated as this: constant (or float16-quantised
# near-constant) columns would otherwise turn tiny test deviations into huge z-scores.
STD_FLOOR = 1e-3


def shared_layout(metadata: Sequence[ShardMetadata], paths: Sequence[str | None]) -> FeatureLayout:
    """The feature layout of ``metadata[0]``, after checking every other video has the same one.

    Raises :class:`InputError` naming the first video (by its path in ``paths``) that differs.
    """
    first = metadata[0]
    for video, path in zip(metadata[1:], paths[1:], strict=True):
        if video.feature_layout != first.feature_layout:
            raise InputError(
                path,
                f"video {video.video!r} has feature layout {video.feature_layout.to_json()}, "
                f"but {first.video!r} has {first.feature_layout.to_json()}; all training videos must share one layout",
            )
    return first.feature_layout


@dataclass
class FeatureSelection:
    """The feature groups a model reads from a shard layout, in order.

    Parameters
    ----------
    layout:
        The shards' feature layout.
    groups:
        Names of the groups used, in order. Use :meth:`of` to validate them.
    """

    layout: FeatureLayout
    groups: tuple[str, ...]
    columns: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.groups = tuple(self.groups)
        self.columns = self.layout.columns(self.groups)

    @classmethod
    def of(cls, layout: FeatureLayout, feature_groups: Sequence[str] | None = None) -> FeatureSelection:
        """The groups ``feature_groups`` of ``layout`` (all of them when ``None``); :class:`InputError` if unusable."""
        groups = tuple(feature_groups) if feature_groups is not None else layout.names
        missing = [name for name in groups if name not in layout.names]
        if missing or not groups:
            raise InputError(
                None,
                f"feature groups {missing or list(groups)} are not usable; the shard layout has {list(layout.names)}",
            )
        return cls(layout, groups)

    @property
    def width(self) -> int:
        """Number of selected columns."""
        return len(self.columns)

    def group_columns(self) -> dict[str, np.ndarray]:
        """Column indices of each selected group within the *selected* feature matrix, by group name."""
        selected = self.layout.subset(self.groups)
        return {name: selected.columns([name]) for name in selected.names}

    def select(self, features: np.ndarray) -> np.ndarray:
        """The selected columns of full-layout ``features``; the array itself when that is all of them.

        The stored dtype (float16) is kept: :meth:`GroupStandardizer.transform` converts while
        it subtracts, in one pass over fresh memory.
        """
        columns = self.columns
        every = len(columns) == features.shape[1] and np.array_equal(columns, np.arange(len(columns)))
        return features if every else features[:, columns]

    def check_finite(self, video: VideoFeatures, path: str | None) -> None:
        """:class:`InputError` naming ``path`` when a selected feature of ``video`` is NaN or infinite."""
        if not np.all(np.isfinite(video.features[:, self.columns])):
            raise InputError(path, f"video {video.metadata.video!r} has NaN or infinite features")


class GroupStandardizer:
    """Centre every column, then divide by a per-column or per-group standard deviation.

    Parameters
    ----------
    scaling:
        ``"group"`` (default): every column of a feature group is divided by the group's
        total standard deviation (the root of the sum of its column variances), so each
        group carries the same total variance whatever its width, and a rare class column
        with a near-zero spread is not blown up into a huge z-score. ``"column"``: plain
        per-column z-scores.
    group_columns:
        Column indices of each group, for ``"group"``; ``None`` (default) treats all
        columns as one group.
    std_floor:
        Smallest divisor used. Default :data:`STD_FLOOR`.

    Attributes (after fitting)
    --------------------------
    mean_, std_ : numpy.ndarray
        ``(width,)`` float64 centre and divisor.
    n_objects_ : int
        Rows the moments came from.
    """

    def __init__(
        self,
        scaling: str = "group",
        group_columns: Sequence[np.ndarray] | None = None,
        std_floor: float = STD_FLOOR,
    ) -> None:
        self.scaling = scaling
        self.group_columns = group_columns
        self.std_floor = std_floor

    def fit(self, features: np.ndarray) -> GroupStandardizer:
        """Fit on the rows of ``features`` ``(n, width)`` held in memory."""
        self._check_scaling()
        features = np.asarray(features, np.float64)
        return self.fit_moments(features.mean(axis=0), features.std(axis=0), len(features))

    def fit_videos(self, videos: Iterable[VideoFeatures], columns: np.ndarray | None = None) -> GroupStandardizer:
        """Fit on the ``columns`` of every object of ``videos``, one video in memory at a time."""
        self._check_scaling()
        try:
            mean, spread, count = feature_moments(videos, columns)
        except ValueError:  # no objects at all
            mean, spread, count = np.zeros(0), np.zeros(0), 0
        return self.fit_moments(mean, spread, count)

    def fit_moments(self, mean: np.ndarray, spread: np.ndarray, count: int) -> GroupStandardizer:
        """Fit from per-column means and population standard deviations over ``count`` rows."""
        self._check_scaling()
        if count < 2:
            raise InputError(None, f"the training videos contain {count} objects; at least 2 are needed")
        spread = np.array(spread, np.float64)
        if self.scaling == "group":
            groups = self.group_columns if self.group_columns is not None else [np.arange(len(spread))]
            for columns in groups:
                spread[columns] = np.sqrt(np.sum(spread[columns] ** 2))
        self.mean_ = np.asarray(mean, np.float64)
        self.std_ = np.maximum(spread, self.std_floor)
        self.n_objects_ = int(count)
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        """``(features - mean_) / std_`` as float32 ``(n, width)``."""
        # float32 arithmetic: float64 temporaries cost more than the encoder at 2048-d. One output
        # array, converted and scaled in place by torch (all cores).
        features = np.asarray(features)
        standardized = torch.empty(features.shape, dtype=torch.float32)
        standardized.copy_(torch.from_numpy(np.ascontiguousarray(features)))
        standardized.sub_(torch.from_numpy(self.mean_.astype(np.float32)))
        standardized.div_(torch.from_numpy(self.std_.astype(np.float32)))
        return standardized.numpy()

    def _check_scaling(self) -> None:
        if self.scaling not in FEATURE_SCALINGS:
            raise InputError(None, f"feature_scaling must be one of {FEATURE_SCALINGS}, not {self.scaling!r}")
