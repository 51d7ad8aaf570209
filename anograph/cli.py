"""The ``anograph`` command line: ``run`` a dataset, ``evaluate`` a trained model again, or the ``demo``.

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
from anograph.io.storage import Storage, with_endpoint


def _add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="folder for report.json, report.md and plots")
    parser.add_argument("--storage", default=None,
                        help="storage root for shards, models and reports: a path, file:// or s3://bucket/prefix; "
                             "default OUT/store")
    parser.add_argument("--s3-endpoint", default=None,
                        help="endpoint URL of an S3-compatible server for an s3:// storage root "
                             "(default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS)")
    parser.add_argument("--window-seconds", type=float, default=1.0,
                        help="test window half-width i in seconds (default 1.0, the paper's choice)")
    parser.add_argument("--scorer", default=None, help="default scorer for the headline AUC (see README)")
    parser.add_argument("--epochs", type=int, default=None, help="maximum DGI training epochs")
    parser.add_argument("--hidden", type=int, default=None, help="GCN hidden channels (default 512)")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default=None,
                        help="dtype of training's dense products (default float32; bfloat16 pays on GPUs and CPUs "
                             "with native bf16, and is about 8x slower on AVX2-only CPUs)")
    parser.add_argument("--sigma", type=float, default=3.0, help="Gaussian smoothing sigma for the smoothed AUCs")
    parser.add_argument("--no-appearance", action="store_true", help="leave the appearance embedding out")
    parser.add_argument("--feature-groups", default=None,
                        help="comma-separated node-feature groups the model uses (default: the model's default)")
    parser.add_argument("--skip-bad-videos", action="store_true",
                        help="leave out videos that cannot be read (listed in the report) instead of failing")
    parser.add_argument("--propagation-steps", type=int, default=None,
                        help="score-propagation steps over the test window graph (default: the model's default)")
    parser.add_argument("--batch-nodes", type=int, default=None,
                        help="train from the shards in batches of at most about N nodes' features in memory "
                             "(default: off, full-batch training with every feature in memory)")
    _add_ablation_options(parser)


def _add_ablation_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ablations (the paper's Tables 4-5, Figs. 3-4; each adds a report section)")
    group.add_argument("--ablate-edges", action="store_true",
                       help="retrain with spatial-only and with temporal-only edges")
    group.add_argument("--window-sweep", default=None,
                       help="comma-separated test windows i to score the same model with, e.g. 1,3,5,10,15")
    group.add_argument("--training-fractions", default=None,
                       help="comma-separated shares of training frames to retrain on, e.g. 0.1,0.5")
    group.add_argument("--embedding-map", action="store_true", help="t-SNE map of the test-object embeddings")
    group.add_argument("--all-ablations", action="store_true",
                       help="all of the above: edges, i=1,3,5,10,15, fractions 0.1,0.5, embedding map")
    group.add_argument("--ablation-seed", type=int, default=0, help="seed of frame discarding and t-SNE")


def _numbers(text: str | None, kind: type, option: str) -> list[Any]:
    if not text:
        return []
    try:
        return [kind(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise InputError(None, f"{option} takes comma-separated numbers, not {text!r}") from error


def _ablations(arguments: argparse.Namespace) -> dict[str, Any]:
    ablations: dict[str, Any] = {
        "edges": arguments.ablate_edges,
        "window_radii": _numbers(arguments.window_sweep, int, "--window-sweep"),
        "training_fractions": _numbers(arguments.training_fractions, float, "--training-fractions"),
        "embedding": arguments.embedding_map,
        "seed": arguments.ablation_seed,
    }
    if arguments.all_ablations:
        ablations.update(edges=True, embedding=True,
                         window_radii=ablations["window_radii"] or [1, 3, 5, 10, 15],
                         training_fractions=ablations["training_fractions"] or [0.1, 0.5])
    return ablations


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
    if arguments.precision is not None:
        options["precision"] = arguments.precision
    device = getattr(arguments, "device", "cpu")  # `demo` has no --device: its motion detector is CPU-only
    if device != "cpu":  # the model trains and scores where the detector runs
        options["device"] = device
    return options


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    """The dataset and detector options ``run`` and ``evaluate`` share (shards are keyed by them)."""
    parser.add_argument("--dataset", required=True,
                        help="ucsd-ped1, ucsd-ped2, avenue, shanghaitech, street-scene, adoc, folder or synthetic")
    parser.add_argument("--root", required=True, type=Path, help="dataset root folder")
    parser.add_argument("--scene", default=None,
                        help="shanghaitech only: one scene (01 ... 13) instead of all 13 pooled")
    parser.add_argument("--adoc-split", default=None, choices=("day", "night", "all"),
                        help="adoc only: day, night or all footage, for training and testing (default all)")
    parser.add_argument("--detector", default="yolox",
                        help="yolox (default), motion, torchvision, detectron2 or precomputed (README: Detectors)")
    parser.add_argument("--weights", default=None,
                        help="detector weights file (YOLOX ONNX; torchvision or detectron2 state dict)")
    parser.add_argument("--detector-config", default=None, help="detectron2 config file (YAML); detectron2 only")
    parser.add_argument("--detections", default=None,
                        help="folder of precomputed detections (README: Precomputed detections); precomputed only")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                        help="where the detector, the appearance network and the model run "
                             "(default cpu; auto = cuda if present)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="frames per detector pass (torchvision, detectron2; default 1)")
    parser.add_argument("--weights-url", default=None, help="URL to download the weights from when --weights is absent")
    parser.add_argument("--confidence", type=float, default=None, help="detector confidence threshold")
    parser.add_argument("--fps", type=float, default=None, help="frame rate when the videos do not say")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anograph", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="extract, train and evaluate on a dataset")
    _add_source_options(run)
    _add_pipeline_options(run)

    evaluate = commands.add_parser(
        "evaluate", help="score an existing model on a dataset again, reusing the feature shards that exist")
    _add_source_options(evaluate)
    evaluate.add_argument("--model", required=True,
                          help="model key in the storage, e.g. models/ucsd-ped2-yolox-00d8ba5e56b8")
    evaluate.add_argument("--storage", required=True, help="storage root (path or URI) holding the model and shards")
    evaluate.add_argument("--s3-endpoint", default=None,
                          help="endpoint URL of an S3-compatible server for an s3:// storage root")
    evaluate.add_argument("--out", required=True, type=Path, help="folder for report.json, report.md and plots")
    evaluate.add_argument("--no-appearance", action="store_true", help="the shards have no appearance embedding")
    evaluate.add_argument("--window-seconds", type=float, default=1.0, help="test window half-width i in seconds")
    evaluate.add_argument("--scorer", default=None, help="default scorer for the headline AUC")
    evaluate.add_argument("--sigma", type=float, default=3.0, help="Gaussian smoothing sigma for the smoothed AUCs")
    _add_ablation_options(evaluate)

    demo = commands.add_parser("demo", help="run the whole pipeline on a generated synthetic scene")
    demo.add_argument("--seed", type=int, default=0, help="seed of the synthetic scene")
    _add_pipeline_options(demo)
    _add_score_command(commands)
    _add_models_command(commands)
    return parser


def _detector_options(arguments: argparse.Namespace) -> dict[str, Any]:
    """Keyword options for the chosen detector from the ``run`` flags; a flag it cannot use is an error."""
    from anograph.extraction.detectors import accepts_option

    name = arguments.detector
    needed = {"detectron2": [("--detector-config", arguments.detector_config), ("--weights", arguments.weights)],
              "precomputed": [("--detections", arguments.detections)]}
    for flag, value in needed.get(name, []):
        if not value:
            raise InputError(None, f"--detector {name} needs {flag}")
    options: dict[str, Any] = {}
    flags = {"weights": ("--weights", arguments.weights), "weights_url": ("--weights-url", arguments.weights_url),
             "config": ("--detector-config", arguments.detector_config),
             "root": ("--detections", arguments.detections),
             "confidence_threshold": ("--confidence", arguments.confidence),
             "batch_size": ("--batch-size", arguments.batch_size)}
    for option, (flag, value) in flags.items():
        if value is None:
            continue
        if not accepts_option(name, option):
            raise InputError(None, f"{flag} does not apply to --detector {name}")
        options[option] = str(Path(value).resolve()) if option in ("weights", "config", "root") else value
    if accepts_option(name, "device"):
        options["device"] = arguments.device
    return options


def _add_score_command(commands: Any) -> None:
    score = commands.add_parser("score", help="score a video, frame folder or live stream with a trained model")
    score.add_argument("source", help="video file or frame folder; with --stream also a camera index or URL")
    score.add_argument("--model", required=True, help="model artifact folder or URI (.../models/<name>)")
    score.add_argument("--out", required=True, type=Path, help="output folder (see README, Scoring outputs)")
    score.add_argument("--scorer", default=None, help="scorer (default: the evaluation default, group_knn)")
    score.add_argument("--threshold-quantile", type=float, default=None,
                       help="alert threshold = this quantile of the normal training frame scores "
                            "(default: the model's calibration default, 0.99)")
    score.add_argument("--weights", default=None, help="detector weights file (YOLOX ONNX) the model was trained with")
    score.add_argument("--fps", type=float, default=None, help="frame rate when the source does not say")
    score.add_argument("--window-seconds", type=float, default=1.0, help="test window half-width (default 1.0)")
    score.add_argument("--min-frames", type=int, default=None, help="shortest alert in frames (default 3)")
    score.add_argument("--max-gap", type=int, default=None, help="gap in frames merged into one alert (default 5)")
    score.add_argument("--no-overlay", action="store_true", help="skip the annotated MP4")
    score.add_argument("--stream", action="store_true", help="score frames live as they arrive")
    score.add_argument("--causal", action="store_true", help="with --stream: use past frames only (lower latency)")
    score.add_argument("--loop", action="store_true", help="with --stream: replay a file or folder endlessly")
    score.add_argument("--max-frames", type=int, default=None, help="with --stream: stop after this many frames")
    score.add_argument("--threads", type=int, default=None,
                       help="torch threads for detection features and scoring (default: 1 with --stream, where "
                            "each frame's products are small and one thread is faster; torch's default otherwise)")


def _score(arguments: argparse.Namespace) -> int:
    from anograph.extraction.features.appearance import torch_threads
    from anograph.serving.alerts import DEFAULT_MAX_GAP, DEFAULT_MIN_FRAMES
    from anograph.serving.inference import load_scoring_model, score_source, write_scoring_outputs

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.evaluate import DEFAULT_SCORER  # one default scorer for evaluation and scoring

    scorer = arguments.scorer or DEFAULT_SCORER
    min_frames = DEFAULT_MIN_FRAMES if arguments.min_frames is None else arguments.min_frames
    max_gap = DEFAULT_MAX_GAP if arguments.max_gap is None else arguments.max_gap
    scoring = load_scoring_model(arguments.model)
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


def _add_models_command(commands: Any) -> None:
    models = commands.add_parser("models", help="the model registry: list, show, promote, rollback")
    models.add_argument("action", choices=("list", "show", "promote", "rollback"))
    models.add_argument("version", nargs="?", default=None,
                        help="version id (show: default current; promote: required)")
    models.add_argument("--storage", required=True, help="storage root (path or URI) holding registry/")
    models.add_argument("--reason", default="by hand (anograph models)", help="reason kept in the history")


def _models(arguments: argparse.Namespace) -> None:
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


def _run_pipeline(arguments: argparse.Namespace, dataset: str, root: Path, detector: str,
                  detector_options: dict[str, Any], fps: float | None) -> dict[str, Any]:
    if arguments.batch_nodes is not None and arguments.batch_nodes < 1:  # fail before Prefect starts
        raise InputError(None, f"--batch-nodes must be at least 1, not {arguments.batch_nodes}")
    _quiet_prefect()
    out = arguments.out.resolve()
    storage = with_endpoint(arguments.storage or str(out / "store"), arguments.s3_endpoint)
    Storage(storage)  # a bad root or a missing bucket fails here, before Prefect starts
    from flows.pipeline import pipeline  # Prefect is imported only when a flow really runs

    return pipeline(
        dataset=dataset,
        root=str(root.resolve()),
        detector=detector,
        detector_options=detector_options,
        out=str(out),
        storage=storage,
        fps=fps,
        window_seconds=arguments.window_seconds,
        model_options=_model_options(arguments),
        appearance=not arguments.no_appearance,
        appearance_options={"device": getattr(arguments, "device", "cpu")},
        default_scorer=arguments.scorer,
        smoothing_sigma=arguments.sigma,
        skip_bad_videos=arguments.skip_bad_videos,
        ablations=_ablations(arguments),
        batch_nodes=arguments.batch_nodes,
    )


def _rescore(arguments: argparse.Namespace, dataset: str, detector_options: dict[str, Any]) -> dict[str, Any]:
    _quiet_prefect()
    storage = with_endpoint(arguments.storage, arguments.s3_endpoint)
    Storage(storage)  # a bad root or a missing bucket fails here, before Prefect starts
    from flows.rescore import rescore  # Prefect is imported only when a flow really runs

    return rescore(
        dataset=dataset,
        root=str(arguments.root.resolve()),
        model_key=arguments.model,
        storage=storage,
        out=str(arguments.out.resolve()),
        detector=arguments.detector,
        detector_options=detector_options,
        appearance=not arguments.no_appearance,
        appearance_options={"device": arguments.device},
        fps=arguments.fps,
        window_seconds=arguments.window_seconds,
        default_scorer=arguments.scorer,
        smoothing_sigma=arguments.sigma,
        ablations=_ablations(arguments),
    )


def _quiet_prefect() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")



def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        if arguments.command == "score":
            return _score(arguments)
        if arguments.command == "models":
            _models(arguments)
            return 0
        if arguments.command == "demo":
            from anograph.datasets.synthetic import generate_synthetic_dataset

            data_root = arguments.out.resolve() / "data"
            generate_synthetic_dataset(data_root, seed=arguments.seed)
            report = _run_pipeline(arguments, "synthetic", data_root, "motion", {}, None)
        else:
            from anograph.datasets import dataset_variant

            # The variant name (e.g. adoc-night) carries the options through the flows into the report.
            dataset = dataset_variant(arguments.dataset, scene=arguments.scene, adoc_split=arguments.adoc_split)
            if not arguments.root.is_dir():  # fail before Prefect spends seconds starting up
                raise InputError(arguments.root, "dataset root is not a folder")
            if arguments.command == "evaluate":
                report = _rescore(arguments, dataset, _detector_options(arguments))
            else:
                report = _run_pipeline(arguments, dataset, arguments.root, arguments.detector,
                                       _detector_options(arguments), arguments.fps)
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
