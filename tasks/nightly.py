"""Tasks of nightly retraining and of the model registry (thin wrappers over ``anograph.ops.nightly``/``registry``)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from anograph.io.storage import Storage
from anograph.ops.nightly import (
    RUNS_PREFIX,
    NightPlan,
    local_video,
    night_summary_markdown,
    plan_night,
    update_ledger,
)
from anograph.ops.registry import ModelRegistry
from anograph.ops.training_run import TrainedModel
from tasks.retry import retry_unless_bad_input


@task(name="plan-night", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_unless_bad_input,
      cache_policy=NO_CACHE)
def plan_night_task(storage_root: str, fingerprint: str) -> NightPlan:
    """List the footage, compare it with the ledger and the shards, and log what tonight will do."""
    plan = plan_night(Storage(storage_root), fingerprint)
    logger = get_run_logger()
    logger.info("footage: %d videos, %d new, %d to extract, %d still rejected",
                len(plan.footage), len(plan.new), len(plan.to_extract), len(plan.still_rejected))
    for name, reason in sorted({**plan.still_rejected, **plan.ignored}.items()):
        logger.warning("skipping %s: %s", name, reason)
    return plan


@task(name="localize-footage", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_unless_bad_input,
      cache_policy=NO_CACHE)
def localize_footage(storage_root: str, key: str, cache_dir: str) -> str:
    """A local file for a footage key (the file itself on a local root, else a copy in ``cache_dir``, reused if there)."""
    return str(local_video(Storage(storage_root), key, cache_dir))


@task(name="current-model", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def current_model_record(storage_root: str) -> dict[str, Any] | None:
    """The current version's record (verified), or ``None`` before the first promotion."""
    registry = ModelRegistry(Storage(storage_root))
    if registry.current() is None:
        return None
    record, _ = registry.load("current")
    return record.to_dict()


@task(name="resolve-model", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_unless_bad_input,
      cache_policy=NO_CACHE)
def resolve_model(storage_root: str, version: str) -> dict[str, Any]:
    """Verify a version (``current`` or an id) and return its record."""
    record, _ = ModelRegistry(Storage(storage_root)).load(version)
    get_run_logger().info("model %s verified (%s)", record.version, record.model_key)
    return record.to_dict()


@task(name="register-model", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def register_model(trained: TrainedModel, storage_root: str, training_manifest: dict[str, Any],
                   config: dict[str, Any]) -> dict[str, Any]:
    """Store a trained model and its frame calibration as a new registry version (not promoted)."""
    record = ModelRegistry(Storage(storage_root)).register(trained.model, training_manifest, config,
                                                           frame_calibration=trained.calibration)
    get_run_logger().info("registered model version %s (%d training shards)", record.version,
                          len(training_manifest["shards"]))
    return record.to_dict()


@task(name="record-metrics", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def record_metrics(storage_root: str, version: str, metrics: dict[str, Any]) -> None:
    ModelRegistry(Storage(storage_root)).record_metrics(version, metrics)


@task(name="promote-model", cache_policy=NO_CACHE)
def promote_model(storage_root: str, version: str, reason: str, expected_current: str | None) -> None:
    """Move ``current`` to ``version`` unless it moved since the comparison (then this task fails)."""
    ModelRegistry(Storage(storage_root)).promote(version, reason=reason, expected_current=expected_current)
    get_run_logger().info("promoted %s (was %s): %s", version, expected_current, reason)


@task(name="report-folder", cache_policy=NO_CACHE)
def report_folder(storage_root: str, prefix: str) -> str:
    """Where to write a report: the storage folder itself on a local root, else a temporary folder."""
    path = Storage(storage_root).local_path(prefix)
    return str(path) if path is not None else tempfile.mkdtemp(prefix="anograph-report-")


@task(name="publish-report", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def publish_report(storage_root: str, folder: str, prefix: str) -> None:
    """Upload a report folder to ``prefix`` when the root is not local (a local root already holds it)."""
    storage = Storage(storage_root)
    if storage.local_path(prefix) is not None:
        return
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            storage.write_bytes(f"{prefix}/{path.relative_to(folder).as_posix()}", path.read_bytes())


@task(name="finish-night", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def finish_night(storage_root: str, plan: NightPlan, rejected: dict[str, str], summary: dict[str, Any]) -> str:
    """Update the footage ledger, write ``nightly/runs/<run>.json`` and publish the summary artifact."""
    storage = Storage(storage_root)
    update_ledger(storage, plan, rejected, summary["run"], summary["finished_at"])
    key = f"{RUNS_PREFIX}/{summary['run']}.json"
    storage.write_bytes(key, json.dumps(summary, indent=1, sort_keys=True, default=str).encode())
    markdown = night_summary_markdown(summary)
    create_markdown_artifact(markdown=markdown, key="nightly-retrain",
                             description=f"nightly retraining {summary['run']}: {summary['decision']}")
    get_run_logger().info("night %s: %s (summary at %s/%s)", summary["run"], summary["decision"], storage_root, key)
    return key
