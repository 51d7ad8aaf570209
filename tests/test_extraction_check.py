"""A model refuses features extracted with other settings than its training shards, naming the setting, and a model
from before a setting was recorded gets its features rebuilt as they were."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from synthetic_features import make_videos

from anograph.errors import ModelArtifactError
from anograph.extraction.features.extractor import NodeFeatureExtractor
from anograph.extraction.features.layout import FeatureLayout
from anograph.extraction.features.motion_boxes import MotionBoxes
from anograph.extraction.features.optical_flow import DEFAULT_MIN_FLOW_HEIGHT, DEFAULT_MIN_MOVING_SPEED
from anograph.io.extraction_settings import (
    ExtractionSettings,
    check_same_extraction,
    extraction_differences,
    legacy_options,
)
from anograph.io.storage import Storage
from anograph.models.estimator import AnoGraph
from anograph.serving.inference import model_extraction_settings

DESCRIPTION = NodeFeatureExtractor(appearance=None, motion_boxes=MotionBoxes()).describe()


def described(video, description):
    metadata = dataclasses.replace(video.metadata, extraction={"features": description})
    return dataclasses.replace(video, metadata=metadata)


def test_differences_name_each_nested_setting_and_ignore_tuple_versus_list():
    other = NodeFeatureExtractor(appearance=None, motion_boxes=MotionBoxes(max_covered_fraction=0.5)).describe()
    assert extraction_differences(DESCRIPTION, other) == ["motion_boxes.max_covered_fraction: 0.25 -> 0.5"]
    saved = {"motion": {**DESCRIPTION["motion"], "groups": [list(group) for group in DESCRIPTION["motion"]["groups"]]}}
    assert extraction_differences({**DESCRIPTION, **saved}, DESCRIPTION) == []
    assert extraction_differences({"flow": {"scale": 1.0}}, {}) == ["flow.scale: 1.0 -> absent"]


@pytest.fixture(scope="module")
def model_and_videos(tmp_path_factory):
    videos = [described(video, DESCRIPTION) for video in make_videos(3, seed=4, n_frames=20)]
    model = AnoGraph(hidden_channels=8, max_epochs=2, score_propagation_steps=0).fit(videos[:2])
    return model, videos


def test_a_shard_of_other_settings_is_refused_by_name_and_a_matching_one_scored(model_and_videos):
    model, videos = model_and_videos
    assert model.extraction_features_ == DESCRIPTION
    scores = model.score_video(videos[2], 3, ["group_knn"])["group_knn"]
    assert np.isfinite(scores).all()
    changed = {**DESCRIPTION, "flow": {**DESCRIPTION["flow"], "preset": "fast"}}
    with pytest.raises(ModelArtifactError, match=r"flow\.preset: medium -> fast"):
        model.score_video(described(videos[2], changed), 3, ["group_knn"])


def test_the_training_settings_survive_saving_and_a_model_without_them_checks_nothing(model_and_videos, tmp_path):
    model, videos = model_and_videos
    storage = Storage(str(tmp_path))
    model.save(storage, "models/m")
    loaded = AnoGraph.load(storage, "models/m")
    assert loaded.extraction_features_ == model.extraction_features_
    loaded.extraction_features_ = {}  # as a model saved before the settings were kept
    changed = {**DESCRIPTION, "flow": {**DESCRIPTION["flow"], "preset": "fast"}}
    assert np.isfinite(loaded.score_video(described(videos[2], changed), 3, ["group_knn"])["group_knn"]).all()


def legacy_record(description):
    """``description`` as an anograph from before the speed floor, the border margin and the flow's minimum height
    recorded it."""
    record = {**description, "motion": {**description["motion"], "flow": dict(description["motion"]["flow"])},
              "flow": dict(description["flow"]), "motion_boxes": dict(description["motion_boxes"])}
    for flow in (record["motion"]["flow"], record["flow"]):
        del flow["min_moving_speed"], flow["min_height"]
    del record["motion_boxes"]["border_margin"]
    return record


def test_a_record_from_before_a_setting_existed_is_read_at_the_value_then_in_effect():
    legacy = legacy_record(DESCRIPTION)
    # Today's defaults differ from what that model saw, and are named with the old values.
    assert extraction_differences(legacy, DESCRIPTION) == [
        f"flow.min_height: 0 -> {DEFAULT_MIN_FLOW_HEIGHT}",
        f"flow.min_moving_speed: 0.0 -> {DEFAULT_MIN_MOVING_SPEED}",
        f"motion.flow.min_height: 0 -> {DEFAULT_MIN_FLOW_HEIGHT}",
        f"motion.flow.min_moving_speed: 0.0 -> {DEFAULT_MIN_MOVING_SPEED}",
        "motion_boxes.border_margin: 0 -> 4",
    ]
    assert legacy_options(DESCRIPTION) == {} and legacy_options({}) == {}
    assert legacy_options(legacy) == {"motion_options": {"min_moving_speed": 0.0, "min_flow_height": 0},
                                      "motion_boxes_options": {"border_margin": 0}}


def test_a_model_from_before_a_setting_existed_gets_its_features_rebuilt_as_they_were():
    detector, _ = ExtractionSettings(detector="motion", appearance=False).build()
    current = ExtractionSettings(detector="motion", appearance=False).build()[1].describe()
    model = SimpleNamespace(detector_=detector.describe(), feature_layout_=FeatureLayout.of([("motion", 14)]),
                            extraction_features_=legacy_record(current))
    settings = model_extraction_settings(model)
    _, extractor = settings.build()
    check_same_extraction(model.extraction_features_, extractor.describe(), None, "rebuilt features")
    # The old floor (half a pixel whatever the footage, small frames not enlarged) and regions growing
    # from the frame's edge.
    assert extractor.optical_flow is not None and extractor.optical_flow.moving_floor(960) == 0.5
    assert extractor.optical_flow.moving_floor(120) == 0.5 and extractor.optical_flow.enlargement(120) == 1.0
    assert extractor.motion_boxes is not None and extractor.motion_boxes.border_margin == 0
    # A setting that really differs is still refused by name.
    model.extraction_features_["motion_boxes"]["max_iou"] = 0.9
    with pytest.raises(ModelArtifactError, match=r"motion_boxes\.max_iou: 0\.9 -> 0\.3"):
        check_same_extraction(model.extraction_features_, extractor.describe(), None, "rebuilt features")


def test_the_features_of_an_earlier_release_are_rebuilt_exactly():
    # What anograph recorded at ea22a66 (the motion detector's default features), before the
    # speed floor and the flow's minimum height: today's description differs in those settings alone,
    # and the legacy rebuild in none.
    earlier = json.loads((Path(__file__).parent / "data" / "extraction_features_ea22a66.json").read_text())
    current = ExtractionSettings(detector="motion", appearance=False).build()[1].describe()
    assert extraction_differences(earlier, current) == [
        f"flow.min_height: 0 -> {DEFAULT_MIN_FLOW_HEIGHT}",
        f"flow.min_moving_speed: 0.0 -> {DEFAULT_MIN_MOVING_SPEED}",
        f"motion.flow.min_height: 0 -> {DEFAULT_MIN_FLOW_HEIGHT}",
        f"motion.flow.min_moving_speed: 0.0 -> {DEFAULT_MIN_MOVING_SPEED}",
    ]
    rebuilt = ExtractionSettings(detector="motion", appearance=False, **legacy_options(earlier)).build()[1].describe()
    assert extraction_differences(earlier, rebuilt) == []


def test_features_from_before_the_appearance_cap_are_rebuilt_uncapped():
    current = ExtractionSettings(detector="motion").build()[1].describe()
    assert current["appearance"]["max_height"] == 480
    earlier = {**current, "appearance": {key: value for key, value in current["appearance"].items()
                                         if key != "max_height"}}
    assert "appearance.max_height: 0 -> 480" in extraction_differences(earlier, current)
    options = legacy_options(earlier)
    assert options["appearance_options"] == {"max_height": 0}
    _, rebuilt = ExtractionSettings(detector="motion", **options).build()
    assert rebuilt.appearance is not None and rebuilt.appearance.network_input_size(1080, 720) == (1080, 720)
    assert extraction_differences(earlier, rebuilt.describe()) == []
    # An extraction without the appearance group has nothing to rebuild.
    assert "appearance_options" not in legacy_options(ExtractionSettings(detector="motion", appearance=False)
                                                      .build()[1].describe())
