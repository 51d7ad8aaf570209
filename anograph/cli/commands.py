"""The ``anograph score`` and ``anograph models`` commands: library calls only, no Prefect."""

from __future__ import annotations

import argparse
import json

from anograph.defaults import default_scorer_for
from anograph.errors import InputError


def score_command(arguments: argparse.Namespace) -> int:
    """``anograph score``: score a video, frame folder or (with ``--stream``) a live source; print its alerts."""
    from anograph.extraction.features.appearance import torch_threads
    from anograph.serving.alerts import DEFAULT_MAX_GAP, DEFAULT_MIN_FRAMES
    from anograph.serving.inference import load_scoring_model, score_source, write_scoring_outputs

    min_frames = DEFAULT_MIN_FRAMES if arguments.min_frames is None else arguments.min_frames
    max_gap = DEFAULT_MAX_GAP if arguments.max_gap is None else arguments.max_gap
    scoring = load_scoring_model(arguments.model)
    scorer = arguments.scorer or default_scorer_for(scoring.model.scorer_names)[0]
    if arguments.stream:
        from anograph.serving.live_session import run_live

        report = run_live(scoring, arguments.source, arguments.out, scorer=scorer,
                          threshold_quantile=arguments.threshold_quantile, weights=arguments.weights,
                          fps=arguments.fps, window_seconds=arguments.window_seconds, causal=arguments.causal,
                          loop=arguments.loop, max_frames=arguments.max_frames, min_frames=min_frames,
                          max_gap=max_gap, echo=print, threads=1 if arguments.threads is None else arguments.threads)
        print(json.dumps(report, indent=2))
        return 0
    with torch_threads(arguments.threads):
        scored = score_source(scoring, arguments.source, scorer, arguments.threshold_quantile, arguments.weights,
                              arguments.fps, arguments.window_seconds, min_frames, max_gap)
    paths = write_scoring_outputs(scored, arguments.out, overlay=not arguments.no_overlay)
    for alert in scored.alerts:
        top = alert.top_objects[0] if alert.top_objects else None
        where = f"; top object {top.class_name} at {top.box} in frame {top.frame}" if top else ""
        print(f"alert: frames {alert.start_frame}-{alert.end_frame}, peak {alert.peak_score:.4g}{where}")
    print(json.dumps({"video": scored.video.metadata.video, "frames": len(scored.frame_scores),
                      "alerts": len(scored.alerts), "threshold": scored.threshold.value,
                      "threshold_source": scored.threshold.source,
                      "outputs": {name: str(path) for name, path in paths.items()}}, indent=2))
    return 0


def models_command(arguments: argparse.Namespace) -> int:
    """``anograph models ...``: print the registry, or move its ``current`` pointer."""
    from anograph.io.storage import Storage
    from anograph.ops.registry import ModelRegistry

    registry = ModelRegistry(Storage(arguments.storage))
    current = registry.current()
    if arguments.action == "list":
        print(f"  {'version':<29} {'created':<26} {'frame_auc_micro':>15} {'shards':>6}")
        for version in registry.versions():
            record = registry.record(version)
            auc = (record.metrics or {}).get("frame_auc_micro")
            print(f"{'*' if version == current else ' '} {version:<29} {record.created_at:<26} "
                  f"{'-' if auc is None else f'{auc:.4f}':>15} {len(record.training_manifest.get('shards', [])):>6}")
    elif arguments.action == "show":
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
