"""Flow: re-score an existing model on a dataset, reusing every feature shard that already exists."""

from __future__ import annotations

import time
from typing import Any

from prefect import flow

from anograph.io.extraction_settings import ExtractionSettings
from flows.evaluate import evaluate
from flows.extract_features import extract_features
from tasks.evaluate import load_dataset_task


@flow(name="rescore")
def rescore(
    dataset: str,
    root: str,
    model_key: str,
    storage: str,
    out: str,
    detector: str = "yolox",
    detector_options: dict[str, Any] | None = None,
    appearance: bool = True,
    appearance_options: dict[str, Any] | None = None,
    fps: float | None = None,
    window_seconds: float = 1.0,
    default_scorer: str | None = None,
    smoothing_sigma: float = 3.0,
    ablations: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate the model at ``storage/model_key`` on ``dataset`` without training it again.

    Shards are keyed by the extraction fingerprint of the detector settings given, so
    shards that exist for those settings are reused and only missing ones are extracted.
    Training shards are needed (and extracted if missing) only for ablations that retrain.
    The evaluation fails, naming the shard, if the shards' detector is not the model's.
    """
    data = load_dataset_task(dataset, root, fps)
    settings = ExtractionSettings(detector=detector, detector_options=detector_options or {},
                                  appearance=appearance, appearance_options=appearance_options or {}).to_dict()
    started = time.perf_counter()
    test_keys = extract_features([{"name": v.name, "path": str(v.path)} for v in data.test],
                                 storage, settings, "test", data.fps)["shards"]
    wanted = ablations or {}
    train_keys = None
    if wanted.get("edges") or wanted.get("training_fractions"):
        train_keys = extract_features([{"name": v.name, "path": str(v.path)} for v in data.train],
                                      storage, settings, "train", data.fps)["shards"]
    config = {"extraction": settings, "storage": storage, "root": root, "command": "rescore"}
    return evaluate(dataset, root, storage, model_key, test_keys, out, fps=data.fps,
                    window_seconds=window_seconds, default_scorer=default_scorer,
                    smoothing_sigma=smoothing_sigma, detector=detector,
                    stage_seconds={"extract": time.perf_counter() - started}, config=config,
                    train_shard_keys=train_keys, ablations=ablations)
