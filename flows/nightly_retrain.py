"""Flow: nightly retraining on the footage that arrived, promoting only a model that is not worse.

One night: plan (new footage vs. the ledger and the shards) -> extract what lacks a shard
(bad files are reported and skipped) -> retrain on every good training shard and calibrate its
alert thresholds (:func:`anograph.ops.training_run.train_model`, as ``flows/train.py``) -> register the
candidate -> evaluate candidate and current model on the same fixed evaluation set ->
promote if the candidate is not more than ``margin`` below -> ledger, summary, artifact.
Nothing new since the current model was trained: no training at all.
The ``nightly-retrain`` deployment runs one night at a time (``concurrency_limit`` in
``prefect.yaml``); promotion also refuses a ``current`` pointer that moved during the night.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.futures import wait
from prefect.runtime import flow_run

from anograph.defaults import DEFAULT_WINDOW_SECONDS
from anograph.errors import InputError
from anograph.io.extraction_settings import extraction_settings
from anograph.ops.nightly import (
    COMPARED_METRICS,
    TRAIN_SPLIT,
    compared_metrics,
    decide_promotion,
    reason_not_to_train,
    training_manifest,
)
from flows.evaluate_model import evaluate_model
from tasks.extract import extract_video_shard, plan_extraction
from tasks.nightly import (
    current_model_record,
    finish_night,
    localize_footage,
    plan_night_task,
    promote_model,
    publish_report,
    record_metrics,
    register_model,
    report_folder,
)
from tasks.train import train_model_task


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@flow(name="nightly-retrain")
def nightly_retrain(
    storage_root: str,
    eval_dataset: str,
    eval_root: str,
    detector: str = "yolox",
    detector_options: dict[str, Any] | None = None,
    appearance: bool = True,
    fps: float | None = None,
    model_options: dict[str, Any] | None = None,
    metric: str = "frame_auc_micro",
    margin: float = 0.01,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    default_scorer: str | None = None,
) -> dict[str, Any]:
    """Retrain on ``storage_root/videos/train/`` and promote if not worse on ``eval_dataset``.

    ``fps`` is used for footage without a frame rate (frame folders). ``metric`` and ``margin``:
    see :func:`anograph.ops.nightly.decide_promotion`. Returns the night's summary, also written to
    ``nightly/runs/<run>.json`` and published as the ``nightly-retrain`` artifact.
    """
    logger = get_run_logger()
    run = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{(flow_run.get_id() or 'local')[:8]}"
    summary: dict[str, Any] = {"run": run, "started_at": _now(), "storage_root": storage_root,
                               "evaluation": {"dataset": eval_dataset, "root": eval_root},
                               "metric": metric, "margin": margin, "metrics_compared": list(COMPARED_METRICS)}
    settings = extraction_settings(detector, detector_options, appearance)
    fingerprint = plan_extraction(settings)
    plan = plan_night_task(storage_root, fingerprint)

    # 1-2. Extract what has no shard yet; one bad video is reported, never blocks the night.
    rejected: dict[str, str] = {}
    failed: dict[str, str] = {}
    if plan.to_extract:
        # Named by the flow run, so a rerun of this run (after a killed worker) reuses finished downloads.
        cache_dir = str(Path(tempfile.gettempdir()) / f"anograph-footage-{flow_run.get_id() or uuid.uuid4().hex}")
        paths = localize_footage.map(unmapped(storage_root), [video.key for video in plan.to_extract],
                                     unmapped(cache_dir))
        futures = extract_video_shard.map(
            video_name=[video.name for video in plan.to_extract], video_path=paths, split=unmapped(TRAIN_SPLIT),
            fps=unmapped(fps), storage_root=unmapped(storage_root), fingerprint=unmapped(fingerprint),
            settings=unmapped(settings), source=[video.key for video in plan.to_extract],
        )
        wait(futures)
        shutil.rmtree(cache_dir, ignore_errors=True)
        for video, future in zip(plan.to_extract, futures, strict=True):
            try:
                plan.shards[video.name] = future.result()["shard"]
            except InputError as error:  # named by its storage key: the local file may be a download
                rejected[video.name] = f"{video.key}: {error.reason}"
                logger.warning("rejected %s: %s", video.key, error)
            except Exception as error:  # noqa: BLE001 - reported in the summary, retried next night
                failed[video.name] = f"{type(error).__name__}: {error}"
                logger.error("failed %s (retried next night): %s", video.key, error)
    summary.update(
        fingerprint=fingerprint, n_footage=len(plan.footage), new_videos=plan.new,
        extracted=sorted({video.name for video in plan.to_extract} - set(rejected) - set(failed)),
        rejected={**{name: f"{reason} (an earlier night)" for name, reason in plan.still_rejected.items()},
                  **rejected},
        failed=failed, ignored=plan.ignored,
    )
    skipped = set(plan.still_rejected) | set(rejected) | set(failed)
    manifest = training_manifest(plan, fingerprint, skipped)
    summary["n_training_shards"] = len(manifest["shards"])

    current = current_model_record(storage_root)
    summary["previous_version"] = current["version"] if current else None
    summary["promoted"] = False
    if reason := reason_not_to_train(manifest, current):
        summary["decision"] = reason
    else:
        # 3. Retrain on the full training set, calibrating the alert thresholds as every served model needs.
        trained = train_model_task(storage_root, manifest["shards"], model_options or {},
                                   {"window_seconds": window_seconds, "default_fps": fps,
                                    "headline_scorer": default_scorer})
        config = {"extraction": settings, "model_options": model_options or {}, "night": run}
        candidate = register_model(trained, storage_root, manifest, config)
        summary["candidate_version"] = candidate["version"]

        # 4. Evaluate candidate and current model on the same fixed evaluation set.
        metrics: dict[str, dict[str, Any] | None] = {}
        for role, version in (("candidate", candidate["version"]), ("current", summary["previous_version"])):
            if version is None:
                continue
            prefix = f"reports/nightly/{run}/{role}"
            folder = report_folder(storage_root, prefix)
            state = evaluate_model(eval_dataset, eval_root, storage_root, folder, model_version=version, fps=fps,
                                   window_seconds=window_seconds, default_scorer=default_scorer, return_state=True)
            if state.is_completed():
                metrics[role] = compared_metrics(state.result())
                publish_report(storage_root, folder, prefix)
            elif role == "candidate":
                raise RuntimeError(f"evaluating the candidate {version} failed: {state.message}")
            else:
                metrics[role] = None
                summary["current_evaluation_error"] = state.message
                logger.warning("the current model %s could not be evaluated: %s", version, state.message)
        summary["metrics"] = {role: value for role, value in metrics.items() if value is not None}
        record_metrics(storage_root, candidate["version"], {**metrics["candidate"], "evaluation": summary["evaluation"]})

        # 5. Promote only if not worse than the current model by more than the margin.
        promote, reason = decide_promotion(metrics["candidate"], metrics.get("current"), metric, margin)
        if promote:
            promote_model(storage_root, candidate["version"], reason, summary["previous_version"])
            summary["promoted"] = True
            summary["decision"] = f"promoted {candidate['version']}: {reason}"
        else:
            summary["decision"] = f"kept {summary['previous_version']}, not {candidate['version']}: {reason}"
    summary["current_version"] = summary["candidate_version"] if summary["promoted"] else summary["previous_version"]
    summary["finished_at"] = _now()
    logger.info("decision: %s", summary["decision"])
    summary["summary_key"] = finish_night(storage_root, plan, rejected, summary)
    return summary
