"""The ``anograph`` command line: ``run`` a dataset through the pipeline, or the ``demo``.

The CLI only parses arguments and hands them to the Prefect pipeline flow; errors that a
user can cause are printed as one line naming the file and the reason (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from anograph.errors import AnographError, InputError


def _add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="folder for report.json, report.md and plots")
    parser.add_argument("--storage", default=None,
                        help="storage root (path or URI) for shards and models; default OUT/store")
    parser.add_argument("--window-seconds", type=float, default=1.0,
                        help="test window half-width i in seconds (default 1.0, the paper's choice)")
    parser.add_argument("--scorer", default=None, help="default scorer for the headline AUC (see README)")
    parser.add_argument("--epochs", type=int, default=None, help="maximum DGI training epochs")
    parser.add_argument("--hidden", type=int, default=None, help="GCN hidden channels (default 512)")
    parser.add_argument("--sigma", type=float, default=3.0, help="Gaussian smoothing sigma for the smoothed AUCs")
    parser.add_argument("--no-appearance", action="store_true", help="leave the appearance embedding out")
    parser.add_argument("--feature-groups", default=None,
                        help="comma-separated node-feature groups the model uses (default: the model's default)")
    parser.add_argument("--propagation-steps", type=int, default=None,
                        help="score-propagation steps over the test window graph (default: the model's default)")


def _model_options(arguments: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if arguments.epochs is not None:
        options["max_epochs"] = arguments.epochs
    if arguments.hidden is not None:
        options["hidden_channels"] = arguments.hidden
    if arguments.feature_groups:
        options["feature_groups"] = [name.strip() for name in arguments.feature_groups.split(",") if name.strip()]
    if arguments.propagation_steps is not None:
        options["score_propagation_steps"] = arguments.propagation_steps
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anograph", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="extract, train and evaluate on a dataset")
    run.add_argument("--dataset", required=True, help="ucsd-ped1, ucsd-ped2, folder or synthetic")
    run.add_argument("--root", required=True, type=Path, help="dataset root folder")
    run.add_argument("--detector", default="yolox", help="yolox (default) or motion")
    run.add_argument("--weights", default=None, help="detector weights file (YOLOX ONNX)")
    run.add_argument("--weights-url", default=None, help="URL to download the weights from when --weights is absent")
    run.add_argument("--confidence", type=float, default=None, help="detector confidence threshold")
    run.add_argument("--fps", type=float, default=None, help="frame rate when the videos do not say")
    _add_pipeline_options(run)

    demo = commands.add_parser("demo", help="run the whole pipeline on a generated synthetic scene")
    demo.add_argument("--seed", type=int, default=0, help="seed of the synthetic scene")
    _add_pipeline_options(demo)

    models = commands.add_parser("models", help="the model registry: list, show, promote, rollback")
    models.add_argument("action", choices=("list", "show", "promote", "rollback"))
    models.add_argument("version", nargs="?", default=None,
                        help="version id (show: default current; promote: required)")
    models.add_argument("--storage", required=True, help="storage root (path or URI) holding registry/")
    models.add_argument("--reason", default="by hand (anograph models)", help="reason kept in the history")
    return parser


def _models(arguments: argparse.Namespace) -> None:
    """``anograph models ...``: print the registry, or move its ``current`` pointer."""
    from anograph.registry import ModelRegistry
    from anograph.storage import Storage

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


def _run_pipeline(arguments: argparse.Namespace, dataset: str, root: Path, detector: str,
                  detector_options: dict[str, Any], fps: float | None) -> dict[str, Any]:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    from flows.pipeline import pipeline  # Prefect is imported only when a flow really runs

    out = arguments.out.resolve()
    return pipeline(
        dataset=dataset,
        root=str(root.resolve()),
        detector=detector,
        detector_options=detector_options,
        out=str(out),
        storage=arguments.storage or str(out / "store"),
        fps=fps,
        window_seconds=arguments.window_seconds,
        model_options=_model_options(arguments),
        appearance=not arguments.no_appearance,
        default_scorer=arguments.scorer,
        smoothing_sigma=arguments.sigma,
    )


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        if arguments.command == "models":
            _models(arguments)
            return 0
        if arguments.command == "demo":
            from anograph.datasets.synthetic import generate_synthetic_dataset

            data_root = arguments.out.resolve() / "data"
            generate_synthetic_dataset(data_root, seed=arguments.seed)
            report = _run_pipeline(arguments, "synthetic", data_root, "motion", {}, None)
        else:
            if not arguments.root.is_dir():  # fail before Prefect spends seconds starting up
                raise InputError(arguments.root, "dataset root is not a folder")
            options: dict[str, Any] = {}
            if arguments.weights:
                options["weights"] = str(Path(arguments.weights).resolve())
            if arguments.weights_url:
                options["weights_url"] = arguments.weights_url
            if arguments.confidence is not None:
                options["confidence_threshold"] = arguments.confidence
            report = _run_pipeline(arguments, arguments.dataset, arguments.root, arguments.detector, options,
                                   arguments.fps)
    except AnographError as error:
        print(f"anograph: error: {error}", file=sys.stderr)
        return 2
    headline = {key: report.get(key) for key in ("dataset", "detector", "default_scorer", "frame_auc_micro",
                                                 "frame_auc_macro", "n_test_frames", "n_anomalous_frames")}
    print(json.dumps(headline, indent=2))
    print(f"report: {arguments.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
