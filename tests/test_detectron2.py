"""The paper's detectron2 R101-C4 detector, run for real with random weights where detectron2 is installed.

detectron2 is not on PyPI, so most of this module skips (with the reason) where it is missing;
the checks that need no detectron2 (the error saying how to install it, refusing pickles) always run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from anograph.errors import InputError, ModelArtifactError
from anograph.extraction.detectors import create_detector
from anograph.extraction.detectors.detectron2_rcnn import (
    Detectron2Detector,
    load_state_dict,
    model_zoo_config,
    write_random_weights,
)

SMALL = {"min_size": 128, "max_size": 256, "max_proposals": 20, "max_detections": 8, "confidence_threshold": 0.0}


def test_without_detectron2_the_error_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "detectron2", None)  # makes ``import detectron2`` fail here
    with pytest.raises(InputError, match="not on PyPI.*Optional: detectron2"):
        create_detector("detectron2", config=tmp_path / "c.yaml", weights=tmp_path / "w.pth")


def test_pickle_weights_are_refused_with_the_conversion_command(tmp_path: Path) -> None:
    model_zoo_file = tmp_path / "model_final.pkl"
    model_zoo_file.write_bytes(b"\x80\x04not loaded")
    with pytest.raises(ModelArtifactError, match="pickle weights are not loaded; convert") as caught:
        load_state_dict(model_zoo_file)
    assert caught.value.path == str(model_zoo_file)
    not_a_state_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], not_a_state_dict)
    with pytest.raises(ModelArtifactError, match="state dict of tensors"):
        load_state_dict(not_a_state_dict)


@pytest.fixture(scope="module")
def r101_c4(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """detectron2's model-zoo R101-C4 config and a randomly initialised state dict for it."""
    pytest.importorskip("detectron2", reason="detectron2 is not installed (not on PyPI; docs/detectors.md 'Optional: detectron2')")
    config = model_zoo_config()
    weights = write_random_weights(config, tmp_path_factory.mktemp("detectron2") / "r101_c4_random.pth")
    return config, weights


@pytest.fixture(scope="module")
def detector(r101_c4: tuple[Path, Path]) -> Detectron2Detector:
    config, weights = r101_c4
    return Detectron2Detector(config, weights, **SMALL)


@pytest.fixture(scope="module")
def frames(ped2_root: Path) -> list[np.ndarray]:
    folder = ped2_root / "UCSDped2" / "Test" / "Test001"
    return [cv2.imread(str(path)) for path in sorted(folder.iterdir())[:2]]


@pytest.mark.shared_data
def test_r101_c4_gives_2048_d_res5_features_of_its_boxes(detector: Detectron2Detector, frames: list[np.ndarray]) -> None:
    assert detector.describe()["confidence_threshold"] == 0.0
    assert detector.feature_width == 2048 and len(detector.class_names) == 80
    frame = frames[0]
    height, width = frame.shape[:2]
    found = detector.detect(frame)
    n = len(found)
    assert n == SMALL["max_detections"], "random weights at confidence 0 fill the per-frame cap"
    assert found.boxes.shape == (n, 4) and found.boxes.dtype == np.float32
    assert found.scores.dtype == np.float32 and found.class_ids.dtype == np.int32
    assert found.class_scores.shape == (n, 80) and found.features.shape == (n, 2048)
    assert found.features.dtype == np.float32 and np.isfinite(found.features).all()
    assert np.all(found.boxes >= 0) and np.all(found.boxes[:, [0, 2]] <= width) and np.all(found.boxes[:, [1, 3]] <= height)
    np.testing.assert_allclose(found.scores, found.class_scores[np.arange(n), found.class_ids], rtol=1e-6)
    for index in (0, n - 1):
        alone = detector.box_features(frame, found.boxes[index : index + 1])[0]
        np.testing.assert_allclose(alone, found.features[index], rtol=1e-3, atol=1e-3)
    assert np.abs(detector.box_features(frame, found.boxes[1:2])[0] - found.features[0]).max() > 1e-3

    batched = detector.detect_batch(frames)
    for single_frame, together in zip(frames, batched, strict=True):
        alone = detector.detect(single_frame)
        np.testing.assert_array_equal(alone.class_ids, together.class_ids)
        np.testing.assert_allclose(alone.boxes, together.boxes, atol=1e-2)
        np.testing.assert_allclose(alone.features, together.features, rtol=1e-3, atol=1e-3)


def test_the_paper_threshold_is_the_default_and_weights_must_fit(r101_c4: tuple[Path, Path], tmp_path: Path) -> None:
    config, weights = r101_c4
    assert Detectron2Detector(config, weights, min_size=128).confidence_threshold == 0.65
    partial = tmp_path / "partial.pth"
    state = load_state_dict(weights)
    torch.save({key: value for key, value in state.items() if "res5" not in key}, partial)
    with pytest.raises(ModelArtifactError, match="weights lack") as caught:
        Detectron2Detector(config, partial)
    assert caught.value.path == str(partial)
    with pytest.raises(InputError, match="not a detectron2 config"):
        Detectron2Detector(partial, weights)
