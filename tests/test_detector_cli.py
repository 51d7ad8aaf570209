"""The ``run`` flags that choose and configure a detector, and the registry behind them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from anograph.cli import build_parser
from anograph.cli.options import detector_options_from, model_options_from
from anograph.datasets.synthetic import generate_synthetic_dataset
from anograph.errors import InputError
from anograph.extraction.detectors import DETECTOR_CLASSES, accepts_option, create_detector, detector_class
from flows.cli import main


def parse(*flags: str):
    return build_parser().parse_args(["run", "--dataset", "folder", "--root", ".", "--out", "out", *flags])


def test_every_registered_detector_is_importable_without_its_optional_packages() -> None:
    # detectron2 itself is imported only when that detector is built.
    for name in DETECTOR_CLASSES:
        assert detector_class(name).name == name
    assert accepts_option("torchvision", "device") and not accepts_option("motion", "device")


def test_flags_become_the_chosen_detectors_options(tmp_path: Path) -> None:
    options = detector_options_from(parse("--detector", "torchvision", "--weights", "w.pth", "--device", "auto",
                                      "--batch-size", "4", "--confidence", "0.5"))
    assert options == {"weights": str(Path("w.pth").resolve()), "device": "auto", "batch_size": 4,
                       "confidence_threshold": 0.5}
    options = detector_options_from(parse("--weights", "y.onnx", "--tiles", "2"))
    assert options == {"weights": str(Path("y.onnx").resolve()), "tiles": 2, "device": "cpu"}
    options = detector_options_from(parse("--detector", "precomputed", "--detections", str(tmp_path)))
    assert options == {"root": str(tmp_path.resolve())}, "precomputed runs nothing, so it takes no device"
    options = detector_options_from(parse("--detector", "detectron2", "--detector-config", "c.yaml", "--weights", "w.pth"))
    assert options["config"] == str(Path("c.yaml").resolve()) and options["device"] == "cpu"


def test_device_and_precision_reach_the_model() -> None:
    """``--device`` moves training and scoring too; the CPU default leaves the model's own default."""
    assert model_options_from(parse("--device", "auto", "--precision", "bfloat16")) == {
        "device": "auto", "precision": "bfloat16"}
    assert model_options_from(parse("--hidden", "64")) == {"hidden_channels": 64}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--detector", "precomputed"), "--detector precomputed needs --detections"),
        (("--detector", "detectron2", "--weights", "w.pth"), "--detector detectron2 needs --detector-config"),
        (("--detector", "motion", "--batch-size", "2"), "--batch-size does not apply to --detector motion"),
        (("--detector", "yolox", "--detections", "d"), "--detections does not apply to --detector yolox"),
        (("--detector", "motion", "--tiles", "2"), "--tiles does not apply to --detector motion"),
        (("--detector", "nonesuch"), "unknown detector 'nonesuch'"),
    ],
)
def test_flags_that_cannot_work_are_clear_errors(flags: tuple[str, ...], message: str) -> None:
    with pytest.raises(InputError, match=message):
        detector_options_from(parse(*flags))


def test_a_missing_required_option_is_an_input_error() -> None:
    with pytest.raises(InputError, match="detector 'precomputed': .*root"):
        create_detector("precomputed")


@pytest.mark.slow
def test_run_with_precomputed_detections_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``anograph run --detector precomputed``: boxes from npz files, then graphs, model and report."""
    root = tmp_path / "data"
    dataset = generate_synthetic_dataset(root, n_train_videos=2, n_test_videos=1, n_frames=20, seed=5)
    detections = tmp_path / "detections"
    detections.mkdir()
    rng = np.random.default_rng(0)
    for video in [*dataset.train, *dataset.test]:
        frames = np.repeat(np.arange(20), 2)
        corners = rng.uniform(20, 200, (40, 2))
        np.savez(detections / f"{video.name}.npz", frame=frames,
                 box=np.concatenate([corners, corners + 20], axis=1), score=np.full(40, 0.9),
                 class_id=np.zeros(40, int), feature=rng.normal(size=(40, 8)))
    code = main(["run", "--dataset", "folder", "--root", str(root), "--detector", "precomputed",
                 "--detections", str(detections), "--no-appearance", "--epochs", "2", "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["detector"] == "precomputed"
    assert report["config"]["extraction"]["detector_options"] == {"root": str(detections.resolve())}
    shards = sorted((tmp_path / "out" / "store" / "shards").rglob("*.parquet"))
    assert len(shards) == 3 and all(path.parent.parent.name.startswith("precomputed-") for path in shards)
