"""The ``anograph score``, ``models`` and ``shards`` commands: library calls only, no Prefect."""

from __future__ import annotations

import argparse
import json

from anograph.defaults import default_scorer_for
from anograph.errors import InputError
from anograph.io.storage import Storage, with_endpoint


def scoring_model_uri(arguments: argparse.Namespace) -> str:
    """The model folder ``score`` loads: ``--model`` itself, or the version of a name or dataset in ``--storage``."""
    from pathlib import Path

    from anograph.cli.model_choice import resolve_model_key

    if arguments.storage is None:
        if arguments.version != "current":
            raise InputError(None, "--version needs --storage and a model name or dataset in --model")
        if "://" not in arguments.model and (Path(arguments.model) / "versions").is_dir():  # a model line folder
            line = Path(arguments.model).resolve()
            storage = Storage.open_existing(line.parent.parent)
            return f"{storage.root}/{resolve_model_key(storage, line.name)}"
        return arguments.model
    storage = Storage.open_existing(arguments.storage)
    return f"{storage.root.rstrip('/')}/{resolve_model_key(storage, arguments.model, arguments.version)}"


def score_command(arguments: argparse.Namespace) -> int:
    """``anograph score``: score a video, frame folder or (with ``--stream``) a live source; print its alerts."""
    from anograph.extraction.features.appearance import torch_threads
    from anograph.serving.alerts import DEFAULT_MAX_GAP, DEFAULT_MIN_FRAMES, frame_number
    from anograph.serving.inference import (
        load_scoring_model,
        model_extraction_settings,
        score_source,
        write_scoring_outputs,
    )

    min_frames = DEFAULT_MIN_FRAMES if arguments.min_frames is None else arguments.min_frames
    max_gap = DEFAULT_MAX_GAP if arguments.max_gap is None else arguments.max_gap
    model_uri = scoring_model_uri(arguments)
    print(f"loading model {model_uri} ...", flush=True)
    scoring = load_scoring_model(model_uri)
    model_extraction_settings(scoring.model, arguments.weights)  # --weights given or missing: say so now
    scorer = arguments.scorer or default_scorer_for(scoring.model.scorer_names)[0]
    print(f"scoring {arguments.source} with {scorer} ...", flush=True)
    if arguments.stream:
        from anograph.serving.live_session import run_live

        report = run_live(scoring, arguments.source, arguments.out, scorer=scorer,
                          threshold_quantile=arguments.threshold_quantile, weights=arguments.weights,
                          fps=arguments.fps, window_seconds=arguments.window_seconds, causal=arguments.causal,
                          loop=arguments.loop, max_frames=arguments.max_frames, min_frames=min_frames,
                          max_gap=max_gap, echo=print, threads=1 if arguments.threads is None else arguments.threads,
                          camera=arguments.camera)
        print(json.dumps(report, indent=2))
        return 0
    with torch_threads(arguments.threads):
        scored = score_source(scoring, arguments.source, scorer, arguments.threshold_quantile, arguments.weights,
                              arguments.fps, arguments.window_seconds, min_frames, max_gap, camera=arguments.camera)
    paths = write_scoring_outputs(scored, arguments.out, overlay=not arguments.no_overlay)
    for alert in scored.alerts:
        top = alert.top_objects[0] if alert.top_objects else None
        where = f"; top object {top.class_name} at {top.box} in frame {frame_number(top.frame)}" if top else ""
        print(f"alert: frames {frame_number(alert.start_frame)}-{frame_number(alert.end_frame)} (1-based), "
              f"peak {alert.peak_score:.4g}{where}")
    print(json.dumps({"video": scored.video.metadata.video, "frames": len(scored.frame_scores),
                      "alerts": len(scored.alerts), "threshold": scored.threshold.value,
                      "threshold_source": scored.threshold.source,
                      "outputs": {name: str(path) for name, path in paths.items()}}, indent=2))
    return 0


def models_command(arguments: argparse.Namespace) -> int:
    """``anograph models ...``: list every model version, show one, or move a line's ``current`` pointer."""
    from anograph.ops.model_versions import NIGHTLY_LINE, list_model_versions, model_line, resolve_model

    storage = Storage.open_existing(with_endpoint(arguments.storage, arguments.s3_endpoint))  # never create a typo
    if arguments.action == "list":
        print(f"  {'model':<36} {'version':<29} {'created':<25} {'frame_auc_micro':>15} {'shards':>6}  options")
        for listed in list_model_versions(storage):
            record = listed.record
            auc = (record.metrics or {}).get("frame_auc_micro")
            options = json.dumps((record.config or {}).get("model_options") or {}, sort_keys=True)
            print(f"{'*' if listed.current else ' '} {listed.name:<36} {record.version:<29} {record.created_at:<25} "
                  f"{'-' if auc is None else f'{auc:.4f}':>15} {len(record.training_manifest.get('shards', [])):>6}"
                  f"  {options}")
        return 0
    name = NIGHTLY_LINE
    if arguments.model:
        name = resolve_model(storage, arguments.model, "latest").name or arguments.model
    registry = model_line(storage, name)
    current = registry.current()
    if arguments.action == "show":
        version = registry.resolve(arguments.version or "current")
        registry.verify(version)
        print(json.dumps({"record": registry.record(version).to_dict(), "current": version == current,
                          "integrity": "ok"}, indent=2, default=str))
    elif arguments.action == "promote":
        if not arguments.version:
            raise InputError(None, "anograph models promote needs a version id")
        registry.promote(arguments.version, reason=arguments.reason)
        print(f"current: {arguments.version} (was {current})")
    else:
        print(f"current: {registry.rollback(reason=arguments.reason)} (was {current})")
    return 0


def shards_command(arguments: argparse.Namespace) -> int:
    """``anograph shards show FILE``: the shard's layout, counts and first rows with named columns."""
    from anograph.io.shard_summary import shard_summary_lines

    for line in shard_summary_lines(arguments.file, rows=arguments.rows):
        print(line)
    return 0
