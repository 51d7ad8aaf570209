"""The layout of a node feature vector: named groups of columns, in order.

Shards store the full vector; a model picks the groups it was trained on by name, so
ablations ("appearance only", "no motion") need no re-extraction, and applying a model
to shards of another layout fails with a clear error instead of silent garbage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureLayout:
    """Ordered ``(group name, width)`` pairs describing the columns of a feature matrix."""

    groups: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, int]]) -> FeatureLayout:
        return cls(tuple((str(name), int(width)) for name, width in pairs))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.groups)

    @property
    def width(self) -> int:
        return sum(width for _, width in self.groups)

    def slice(self, name: str) -> slice:
        """Column range of group ``name``."""
        start = 0
        for group, width in self.groups:
            if group == name:
                return slice(start, start + width)
            start += width
        raise KeyError(f"feature group {name!r} not in layout {self.names}")

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """Column indices of the groups ``names``, in the order given."""
        return np.concatenate([np.arange(self.width)[self.slice(name)] for name in names]) if names else np.zeros(0, int)

    def subset(self, names: Sequence[str]) -> FeatureLayout:
        """The layout of ``features[:, self.columns(names)]``."""
        widths = dict(self.groups)
        missing = [name for name in names if name not in widths]
        if missing:
            raise KeyError(f"feature groups {missing} not in layout {self.names}")
        return FeatureLayout.of((name, widths[name]) for name in names)

    def to_json(self) -> list[list]:
        return [[name, width] for name, width in self.groups]

    @classmethod
    def from_json(cls, value: Iterable[Sequence]) -> FeatureLayout:
        return cls.of((name, width) for name, width in value)
