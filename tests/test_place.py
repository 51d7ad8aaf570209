"""The ``place`` density: an occupancy map of where normal objects stand, on hand-made scenes."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_attributes import FRAME_ASPECT, hand_made

from anograph.attributes.densities import make_density
from anograph.attributes.place import PlaceDensity, standing_points


def lane(n: int, y: float, seed: int = 0):
    """``n`` walkers along a horizontal lane whose feet are at ``y``, spread across the frame."""
    rng = np.random.default_rng(seed)
    xs = rng.uniform(0.05, FRAME_ASPECT - 0.05, n)
    objects = hand_made(list(range(n)), [(x, y - 0.05) for x in xs], [(0.01, 0.0)] * n, height=0.1)
    return objects.with_changes(frame_width=FRAME_ASPECT)


def test_standing_point_is_the_bottom_centre():
    objects = lane(3, 0.6)
    np.testing.assert_allclose(standing_points(objects)[:, 1], 0.6, atol=1e-6)
    np.testing.assert_allclose(standing_points(objects)[:, 0], objects.centres[:, 0])


def test_an_object_off_the_lane_scores_higher_than_one_on_it():
    density = PlaceDensity().fit([lane(400, 0.6)])
    on_lane, off_lane = lane(5, 0.6, seed=1), lane(5, 0.2, seed=1)
    assert density.score(off_lane).min() > density.score(on_lane).max() + 3.0
    # The smoothing spreads a lane over neighbouring cells: one cell away is less rare than far away.
    near = lane(5, 0.6 + 1.0 / density.cells_per_height, seed=1)
    assert density.score(on_lane).max() < density.score(near).min() < density.score(off_lane).min()


def test_the_map_is_a_distribution_over_the_frame_and_survives_its_state():
    density = PlaceDensity(cells_per_height=10).fit([lane(200, 0.6)])
    assert density.log_share_.shape == (10, int(np.ceil(FRAME_ASPECT * 10)))
    assert np.exp(density.log_share_).sum() == pytest.approx(1.0)
    assert np.isfinite(density.log_share_).all()  # a cell nothing stood in keeps the prior's share
    restored = make_density("place", density.config()).load_state(density.state())
    objects = lane(20, 0.3, seed=2)
    np.testing.assert_array_equal(restored.score(objects), density.score(objects))


def test_points_outside_the_frame_score_as_its_edge_cells():
    density = PlaceDensity().fit([lane(100, 0.6)])
    outside = lane(4, 0.6).with_changes(centres=np.float32([[-0.2, 0.55], [FRAME_ASPECT + 0.3, 0.55],
                                                             [0.0, 0.55], [FRAME_ASPECT - 0.001, 0.55]]))
    scores = density.score(outside)
    assert scores[0] == scores[2] and scores[1] == scores[3]
