"""A model refuses features extracted with other settings than its training shards, naming the setting."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from synthetic_features import make_videos

from anograph.errors import ModelArtifactError
from anograph.extraction.features.extractor import NodeFeatureExtractor
from anograph.extraction.features.motion_boxes import MotionBoxes
from anograph.io.extraction_settings import extraction_differences
from anograph.io.storage import Storage
from anograph.models.estimator import AnoGraph

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
