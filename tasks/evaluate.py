"""Tasks of the evaluation stage: load a model, score test videos, ablations, write the report."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from anograph.datasets import load_dataset
from anograph.datasets.base import Dataset
from anograph.errors import InputError, ModelArtifactError
from anograph.evaluation.ablations import attribute_subsets, embedding_map
from anograph.evaluation.report import build_report, object_regions, store_report, write_report
from anograph.graph.windows import window_radius_for
from anograph.io.shards import read_metadata, read_shard
from anograph.io.storage import Storage
from anograph.models.estimator import SIDECAR_FILE, AnoGraph
from anograph.models.frame_scoring import scorer_frame_scores
from anograph.serving.calibration import alert_threshold, load_frame_calibration
from tasks.retry import retry_unless_bad_input


@task(name="load-dataset", retry_condition_fn=retry_unless_bad_input, cache_policy=NO_CACHE)
def load_dataset_task(name: str, root: str, fps: float | None = None) -> Dataset:
    dataset = load_dataset(name, root, fps=fps)
    get_run_logger().info("%s: %d train, %d test videos", name, len(dataset.train), len(dataset.test))
    return dataset


@task(name="load-model", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_unless_bad_input,
      cache_policy=NO_CACHE)
def load_model(storage_root: str, key: str) -> AnoGraph:
    return AnoGraph.load(Storage(storage_root), key)


@task(name="model-exists", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def stored_model_exists(storage_root: str, key: str) -> bool:
    """Whether a complete model artifact is stored under ``key`` (its ``model.json`` is written last)."""
    return Storage(storage_root).exists(f"{key}/{SIDECAR_FILE}")


@task(name="check-model-shards", cache_policy=NO_CACHE, retry_condition_fn=retry_unless_bad_input)
def check_model_matches_shards(model: AnoGraph, storage_root: str, shard_keys: list[str]) -> None:
    """Fail early, naming the shard, when the test shards come from another detector than the model's."""
    storage = Storage(storage_root)
    for key in shard_keys:
        detector = read_metadata(storage, key).detector
        if detector != model.detector_:
            raise ModelArtifactError(
                f"{storage.uri}/{key}",
                f"shard detector {detector} differs from the model's training detector {model.detector_}; "
                "evaluate with the detector settings the model was trained with",
            )


@task(name="score-video", task_run_name="score-{shard_key}", cache_policy=NO_CACHE,
      retry_condition_fn=retry_unless_bad_input)
def score_video(model: AnoGraph, storage_root: str, shard_key: str, window_seconds: float,
                default_fps: float | None, radius: int | None = None,
                scorers: list[str] | None = None) -> tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Scores of one test video: ``(video, scorer -> per-frame scores, scorer -> object regions)``.

    Frame scores are NaN for frames without objects. Object regions are ``(n, 6)`` rows
    ``frame, x1, y1, x2, y2, score`` (the input of RBDC / TBDC). ``radius`` overrides the
    window derived from ``window_seconds`` and the frame rate (for the window ablation).
    """
    video = read_shard(Storage(storage_root), shard_key)
    if radius is None:
        radius = window_radius_for(video, window_seconds, default_fps)
    object_scores = model.score_video(video, window_radius=radius, scorers=tuple(scorers) if scorers else None)
    return (
        video.metadata.video,
        {name: scorer_frame_scores(model, video, name, scores) for name, scores in object_scores.items()},
        {name: object_regions(scores, video.frames, video.boxes) for name, scores in object_scores.items()},
    )


@task(name="embedding-map", cache_policy=NO_CACHE)
def embedding_map_task(model: AnoGraph, storage_root: str, shard_keys: list[str], window_seconds: float,
                       default_fps: float | None, regions: dict[str, dict[str, np.ndarray]], scorers: list[str],
                       seed: int = 0) -> dict[str, Any]:
    """t-SNE of the test objects' GCN embeddings, with each object's score per scorer (the paper's Fig. 3).

    ``regions`` is video -> scorer -> object regions from :func:`score_video` (score in the last column).
    """
    storage = Storage(storage_root)
    embeddings, scores = [], {name: [] for name in scorers}
    for key in shard_keys:
        video = read_shard(storage, key)
        if not video.n_objects:
            continue
        radius = window_radius_for(video, window_seconds, default_fps)
        embeddings.append(model.embed_video(video, window_radius=radius)[1])
        for name in scorers:
            scores[name].append(regions[video.metadata.video][name][:, 5])
    if not embeddings:
        raise InputError(None, "no test objects to draw an embedding map of")
    rows, coordinates = embedding_map(np.concatenate(embeddings), seed=seed)
    get_run_logger().info("embedding map of %d test objects", len(rows))
    return {"coordinates": coordinates, "scores": {name: np.concatenate(values)[rows] for name, values in scores.items()}}


@task(name="write-report", cache_policy=NO_CACHE)
def write_report_task(out_dir: str, frame_scores_by_scorer: dict[str, dict[str, np.ndarray]],
                      labels: dict[str, np.ndarray], report_options: dict[str, Any],
                      embedding: dict[str, Any] | None = None, storage_root: str | None = None,
                      report_key: str | None = None) -> dict[str, Any]:
    """Compute the metrics, write report.json/report.md/plots, publish them as Prefect artifacts.

    Artifacts of the flow run: the Markdown report (key ``anograph-report-<dataset>``) and a
    link artifact to each key figure (ROC, embedding map) as a ``file://`` URI. With
    ``storage_root`` and ``report_key`` the report files are also stored under the root.
    """
    report = build_report(frame_scores_by_scorer, labels, **report_options)
    paths = write_report(Path(out_dir), report, frame_scores_by_scorer, labels, report["default_scorer"],
                         embedding=embedding)
    if storage_root and report_key:
        storage = Storage(storage_root)
        keys = store_report(paths, storage, report_key)
        get_run_logger().info("report stored at %s (%d files)", storage.location(report_key), len(keys))
    slug = f"anograph-report-{report['dataset']}".lower().replace("_", "-")
    create_markdown_artifact(
        markdown=paths["markdown"].read_text(),
        key=slug,
        description=f"anograph evaluation of {report['dataset']} (images beside report.md in {out_dir})",
    )
    for figure in ("roc", "embedding"):
        if figure in paths:
            create_link_artifact(
                link=paths[figure].resolve().as_uri(),
                link_text=paths[figure].name,
                key=f"{slug}-{figure}",
                description=f"{figure} figure of the {report['dataset']} evaluation",
            )
    get_run_logger().info(
        "%s: frame AUC micro %.4f, macro %.4f (%s) -> %s",
        report["dataset"], report["frame_auc_micro"], report["frame_auc_macro"] or float("nan"),
        report["default_scorer"], paths["json"],
    )
    return report


@task(name="score-attribute-parts", task_run_name="attribute-parts-{shard_key}", cache_policy=NO_CACHE,
      retry_condition_fn=retry_unless_bad_input)
def score_attribute_parts(model: AnoGraph, storage_root: str, shard_key: str) -> tuple[str, dict[str, np.ndarray]]:
    """Frame scores of one test video per variant of the attribute ablation (``attribute_subsets``)."""
    video = read_shard(Storage(storage_root), shard_key)
    scoring = model.attribute_scoring()
    return video.metadata.video, scoring.subset_frame_scores(video, attribute_subsets(scoring.ablation_labels))


@task(name="alert-threshold", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE,
      retry_condition_fn=retry_unless_bad_input)
def alert_threshold_task(model: AnoGraph, storage_root: str, model_key: str, scorer: str) -> dict[str, Any]:
    """The alert threshold ``anograph score`` would use with this model and scorer (for the report)."""
    calibration = load_frame_calibration(Storage(storage_root), model_key)
    return asdict(alert_threshold(model, calibration, scorer))
