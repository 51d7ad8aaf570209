"""What a nightly retraining run decides: which footage is new, what to extract, whether to promote.

Why: the nightly deployment (``flows/nightly_retrain.py``) must be cheap when nothing arrived,
must never let one bad file block the night, and must only replace the served model with one
that is not worse. These decisions are plain functions over the storage root, testable without
Prefect.

Footage layout under the storage root::

    videos/train/<name>.<ext>     normal footage to train on, one video file each, flat
                                  (``<ext>`` one of anograph.io.video.VIDEO_EXTENSIONS)
    nightly/ledger.json           the footage seen by earlier nights (the watermark)
    nightly/runs/<run>.json       one summary per night (see :func:`night_summary_markdown`)

A video is *new* when the ledger has no entry for its name, or the entry's size differs
(the file was replaced). Shard keys carry the video's content hash (``anograph.io.extraction_settings.shard_key``),
so the ledger records each good video's shard key; a video is *extracted* when it is new or its
recorded shard is not under the current extraction fingerprint or is gone, so footage seen under
other settings is re-extracted and nothing is extracted twice (the extraction task itself also
reuses a complete shard it finds under the video's content hash). A video whose extraction failed with bad input (zero bytes, truncated,
undecodable) is recorded as ``rejected`` with the reason and skipped by later nights until
its size changes; other failures are not recorded, so the next night tries again.
The ledger is written at the end of a night, after the promotion decision: a night that dies
midway is redone by the next one, reusing the shards it finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyarrow.fs import FileType

from anograph.errors import InputError
from anograph.io.extraction_settings import fingerprint_of
from anograph.io.storage import TEMPORARY_MARKER, Storage
from anograph.io.video import VIDEO_EXTENSIONS

FOOTAGE_PREFIX = "videos/train"
LEDGER_KEY = "nightly/ledger.json"
RUNS_PREFIX = "nightly/runs"
TRAIN_SPLIT = "train"
#: Report metrics compared between the candidate and the current model, and kept in the summary.
COMPARED_METRICS = ("frame_auc_micro", "frame_auc_macro", "frame_auc_micro_smoothed", "frame_auc_macro_smoothed")


@dataclass(frozen=True)
class Footage:
    """One training video under ``videos/train/``."""

    name: str
    key: str
    size: int


@dataclass
class NightPlan:
    """What tonight does with the footage (all lists sorted by name)."""

    fingerprint: str
    footage: list[Footage]
    new: list[str]
    to_extract: list[Footage]
    still_rejected: dict[str, str]
    ignored: dict[str, str] = field(default_factory=dict)
    shards: dict[str, str] = field(default_factory=dict)
    """Video name -> its complete shard under tonight's fingerprint: known from the ledger before
    extraction, completed by the flow with what tonight's extraction wrote."""

    def shard_key(self, name: str) -> str | None:
        """Storage key of a footage video's shard under tonight's fingerprint, if it has one."""
        return self.shards.get(name)


def list_footage(storage: Storage) -> tuple[list[Footage], dict[str, str]]:
    """The training videos under ``videos/train/``, and every other key there with why it is ignored."""
    videos: dict[str, Footage] = {}
    ignored: dict[str, str] = {}
    prefix = FOOTAGE_PREFIX + "/"
    for key in storage.list(FOOTAGE_PREFIX):
        relative = key[len(prefix):]
        stem, extension = posixpath.splitext(relative)
        if "/" in relative:
            ignored[key] = "footage must sit directly in videos/train/ (sub-folders are not read)"
        elif extension.lower() not in VIDEO_EXTENSIONS:
            ignored[key] = f"not a video file ({', '.join(VIDEO_EXTENSIONS)})"
        elif stem in videos:
            ignored[key] = f"video name {stem!r} is already used by {videos[stem].key}"
        else:
            size = storage.filesystem.get_file_info(storage.path(key)).size
            videos[stem] = Footage(stem, key, int(size))
    return [videos[name] for name in sorted(videos)], ignored


def load_ledger(storage: Storage) -> dict[str, Any]:
    """The footage ledger: ``{"videos": {name: entry}}``; empty before the first night."""
    if not storage.exists(LEDGER_KEY):
        return {"videos": {}}
    return json.loads(storage.read_bytes(LEDGER_KEY))


def plan_night(storage: Storage, fingerprint: str) -> NightPlan:
    """Compare the footage with the ledger and with the shards under ``fingerprint``."""
    footage, ignored = list_footage(storage)
    seen = load_ledger(storage)["videos"]
    new, to_extract, still_rejected, shards = [], [], {}, {}
    for video in footage:
        entry = seen.get(video.name)
        if entry is None or entry.get("size") != video.size:
            new.append(video.name)
            to_extract.append(video)
            continue
        if entry.get("status") == "rejected":
            still_rejected[video.name] = entry["reason"]
            continue
        key = entry.get("shard")
        if key and fingerprint_of(key) == fingerprint and storage.exists(key):
            shards[video.name] = key
        else:
            to_extract.append(video)
    return NightPlan(fingerprint, footage, new, to_extract, still_rejected, ignored, shards)


def update_ledger(
    storage: Storage, plan: NightPlan, rejected: dict[str, str], run: str, at: str
) -> dict[str, Any]:
    """Record tonight's footage: extracted videos as ``ok``, bad ones as ``rejected`` with the reason.

    Videos that failed for another reason (``rejected`` holds only bad-input failures) and
    videos not seen at all are left out, so a later night tries them again.
    """
    ledger = load_ledger(storage)
    for video in plan.footage:
        if video.name in plan.still_rejected:
            continue
        if video.name in rejected:
            entry = {"status": "rejected", "reason": rejected[video.name]}
        elif (key := plan.shard_key(video.name)) is not None and storage.exists(key):
            entry = {"status": "ok", "shard": key}
        else:
            continue
        previous = ledger["videos"].get(video.name, {})
        first_seen = previous.get("first_seen_run") if previous.get("size") == video.size else None
        ledger["videos"][video.name] = {"key": video.key, "size": video.size, **entry,
                                        "first_seen_run": first_seen or run, "updated_at": at}
    storage.write_bytes(LEDGER_KEY, json.dumps(ledger, indent=1, sort_keys=True).encode())
    return ledger


def local_video(storage: Storage, key: str, cache_dir: str | Path) -> Path:
    """A local path for a footage key: the file itself on a local root, else a copy in ``cache_dir``.

    The video reader needs a local file. The copy lies at ``cache_dir/<identity>/<file name>``,
    where ``<identity>`` hashes the key with the object's size and modification time, so asking
    again for an unchanged object (a retried task, a rerun of the same night) reuses the copy,
    and a replaced object gets a fresh one. The bytes go to a temporary file in that folder,
    renamed once complete: a download that dies midway never looks like a copy.
    """
    path = storage.local_path(key)
    if path is not None:
        return path
    location = storage.path(key)  # refuses a key that escapes the root, so its basename is a plain name
    info = storage.filesystem.get_file_info(location)
    if info.type != FileType.File:
        raise InputError(storage.location(key), "no such object in storage")
    identity = hashlib.sha256(f"{key}\0{info.size}\0{info.mtime_ns}".encode()).hexdigest()[:16]
    target = Path(cache_dir) / identity / posixpath.basename(location)
    if target.is_file() and target.stat().st_size == info.size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}{TEMPORARY_MARKER}{uuid.uuid4().hex}")
    try:
        with storage.filesystem.open_input_stream(location) as source, partial.open("wb") as sink:
            while chunk := source.read(1 << 22):
                sink.write(chunk)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def training_manifest(plan: NightPlan, fingerprint: str, skipped: Iterable[str]) -> dict[str, Any]:
    """What tonight trains on: the shard of every footage video that has one, in footage order, minus ``skipped``."""
    skipped = set(skipped)
    return {"fingerprint": fingerprint,
            "shards": [plan.shards[video.name] for video in plan.footage
                       if video.name not in skipped and video.name in plan.shards]}


def reason_not_to_train(manifest: dict[str, Any], current: dict[str, Any] | None) -> str | None:
    """Why tonight trains nothing (no usable footage, or exactly the current model's shards), else ``None``."""
    if not manifest["shards"]:
        return "no usable training footage under videos/train/; nothing trained"
    if current is not None and current["training_manifest"] == manifest:
        return f"no new footage since the current model {current['version']}; nothing trained"
    return None


def compared_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The :data:`COMPARED_METRICS` of an evaluation report, with the scorer they were measured with."""
    return {**{name: report.get(name) for name in COMPARED_METRICS}, "default_scorer": report.get("default_scorer")}


def decide_promotion(
    candidate: dict[str, Any] | None,
    current: dict[str, Any] | None,
    metric: str = "frame_auc_micro",
    margin: float = 0.01,
) -> tuple[bool, str]:
    """Whether to promote a candidate, and why, from both models' metrics on the same evaluation set.

    Parameters
    ----------
    candidate, current:
        Report metrics (``None`` for the current model when there is none yet).
    metric:
        Higher-is-better metric to compare (default ``frame_auc_micro``).
    margin:
        How far below the current model the candidate may fall and still be promoted
        (default 0.01; 0 means "never worse").
    """
    value = None if candidate is None else candidate.get(metric)
    if value is None:
        return False, f"candidate has no {metric} on the evaluation set; keeping the current model"
    if current is None or current.get(metric) is None:
        return True, f"no current model to compare with; candidate {metric} {value:.4f}"
    reference = float(current[metric])
    if value >= reference - margin:
        return True, f"candidate {metric} {value:.4f} >= current {reference:.4f} - margin {margin:g}"
    return False, (f"candidate {metric} {value:.4f} is more than {margin:g} below the current model's "
                   f"{reference:.4f}; keeping the current model")


def night_summary_markdown(summary: dict[str, Any]) -> str:
    """The night's summary (the dict written to ``nightly/runs/<run>.json``) as Markdown."""
    lines = [f"# Nightly retraining {summary['run']}", "", f"**Decision:** {summary['decision']}", ""]
    lines.append(f"- footage: {summary['n_footage']} videos, {len(summary['new_videos'])} new")
    lines.append(f"- extracted: {len(summary['extracted'])}; training shards: {summary['n_training_shards']}")
    if summary.get("candidate_version"):
        lines.append(f"- candidate: {summary['candidate_version']}")
    lines.append(f"- current after this night: {summary.get('current_version')}")
    for title, field_name in (("Rejected (bad input, skipped)", "rejected"),
                              ("Failed (will be retried next night)", "failed"),
                              ("Ignored keys", "ignored")):
        if summary.get(field_name):
            lines += ["", f"## {title}", ""]
            lines += [f"- `{name}`: {reason}" for name, reason in sorted(summary[field_name].items())]
    if summary.get("metrics"):
        lines += ["", "## Evaluation", "", "| model | " + " | ".join(summary["metrics_compared"]) + " |",
                  "|---|" + "---|" * len(summary["metrics_compared"])]
        for role, metrics in summary["metrics"].items():
            cells = [("-" if metrics.get(name) is None else f"{metrics[name]:.4f}") for name in summary["metrics_compared"]]
            lines.append(f"| {role} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

