"""The ``place`` attribute: where in the frame an object stands, against where normal objects stand.

A fixed camera sees its objects on a few paths: walkers on the walkway, cars on the road. An
ordinary object somewhere normal footage never has one (a walker on the grass, a car on the
pavement) is an anomaly that neither its motion nor its build shows. The density is an
occupancy map of the normal objects' standing points (the box's bottom centre, where it meets
the ground), counted on a grid of ``cells_per_height`` cells per frame height and smoothed by a
Gaussian of ``smoothing`` cells, so that a path seen only sparsely in training is still a path.
The score is minus the log of the map's share at the object's cell; one ``prior_objects``'s
worth of mass spread over the whole frame keeps cells nothing ever stood in finite.

A box the frame's bottom edge cuts stands at the edge, where objects enter and leave; normal
footage has such boxes there too, so they are counted and scored as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from anograph.attributes.base import AttributeDensity, concatenate_values
from anograph.attributes.objects import ObjectAttributes


def standing_points(objects: ObjectAttributes) -> np.ndarray:
    """``(n, 2)`` each box's bottom centre ``(x, y)``, in frame heights."""
    return np.stack([objects.centres[:, 0], objects.centres[:, 1] + objects.sizes[:, 1] / 2], axis=1)


class PlaceDensity(AttributeDensity):
    """Rarity of an object's standing point on the normal objects' occupancy map (see the module docstring).

    Parameters
    ----------
    cells_per_height:
        Grid cells per frame height (the same cell size across the width). Default 20.
    smoothing:
        Standard deviation of the map's Gaussian smoothing, in cells. Default 1.0.
    prior_objects:
        Objects' worth of mass spread evenly over the frame before normalising. Default 1.0.
    """

    name = "place"
    reads = ("centres", "sizes")

    def __init__(self, cells_per_height: int = 20, smoothing: float = 1.0, prior_objects: float = 1.0) -> None:
        self.cells_per_height = int(cells_per_height)
        self.smoothing = float(smoothing)
        self.prior_objects = float(prior_objects)

    def _cells(self, points: np.ndarray, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of each point's cell on a ``grid`` of that shape; points outside take the edge cell."""
        rows = np.clip((points[:, 1] * self.cells_per_height).astype(np.int64), 0, grid[0] - 1)
        columns = np.clip((points[:, 0] * self.cells_per_height).astype(np.int64), 0, grid[1] - 1)
        return rows, columns

    def fit(self, videos: Sequence[ObjectAttributes]) -> PlaceDensity:
        points = concatenate_values(videos, standing_points)
        widths = [video.frame_width for video in videos if video.frame_width]
        frame_width = max(widths) if widths else float(np.max(points[:, 0], initial=1.0))
        shape = (self.cells_per_height, max(1, int(np.ceil(frame_width * self.cells_per_height))))
        rows, columns = self._cells(points, shape)
        counts = np.zeros(shape)
        np.add.at(counts, (rows, columns), 1.0)
        counts = gaussian_filter(counts, self.smoothing, mode="nearest") + self.prior_objects / counts.size
        self.log_share_ = np.log(counts / counts.sum())
        return self

    def score(self, objects: ObjectAttributes) -> np.ndarray:
        rows, columns = self._cells(standing_points(objects), self.log_share_.shape)
        return -self.log_share_[rows, columns]

    def config(self) -> dict[str, Any]:
        return {"cells_per_height": self.cells_per_height, "smoothing": self.smoothing,
                "prior_objects": self.prior_objects}

    def state(self) -> dict[str, np.ndarray]:
        return {"log_share": self.log_share_}

    def load_state(self, state: Mapping[str, np.ndarray]) -> PlaceDensity:
        self.log_share_ = np.asarray(state["log_share"], np.float64)
        return self
