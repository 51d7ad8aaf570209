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
from anograph.storage import Storage, with_endpoint


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
    parser.add_argument("--sigma", type=float, default=3.0, help="Gaussian smoothing sigma for the smoothed AUCs")
    parser.add_argument("--no-appearance", action="store_true", help="leave the appearance embedding out")
    parser.add_argument("--feature-groups", default=None,
                        help="comma-separated node-feature groups the model uses (default: the model's default)")
    parser.add_argument("--skip-bad-videos", action="store_true",
                        help="leave out videos that cannot be read (listed in the report) instead of failing")
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
    run.add_argument("--dataset", required=True,
                     help="ucsd-ped1, ucsd-ped2, avenue, shanghaitech, street-scene, adoc, folder or synthetic")
    run.add_argument("--root", required=True, type=Path, help="dataset root folder")
    run.add_argument("--scene", default=None,
                     help="shanghaitech only: one scene (01 ... 13) instead of all 13 pooled")
    run.add_argument("--adoc-split", default=None, choices=("day", "night", "all"),
                     help="adoc only: day, night or all footage, for training and testing (default all)")
    run.add_argument("--detector", default="yolox",
                     help="yolox (default), motion, torchvision, detectron2 or precomputed (README: Detectors)")
    run.add_argument("--weights", default=None,
                     help="detector weights file (YOLOX ONNX; torchvision or detectron2 state dict)")
    run.add_argument("--detector-config", default=None, help="detectron2 config file (YAML); detectron2 only")
    run.add_argument("--detections", default=None,
                     help="folder of precomputed detections (README: Precomputed detections); precomputed only")
    run.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                     help="where the detector and the appearance network run (default cpu; auto = cuda if present)")
    run.add_argument("--batch-size", type=int, default=None,
                     help="frames per detector pass (torchvision, detectron2; default 1)")
    run.add_argument("--weights-url", default=None, help="URL to download the weights from when --weights is absent")
    run.add_argument("--confidence", type=float, default=None, help="detector confidence threshold")
    run.add_argument("--fps", type=float, default=None, help="frame rate when the videos do not say")
    _add_pipeline_options(run)

    demo = commands.add_parser("demo", help="run the whole pipeline on a generated synthetic scene")
    demo.add_argument("--seed", type=int, default=0, help="seed of the synthetic scene")
    _add_pipeline_options(demo)
    return parser


def _detector_options(arguments: argparse.Namespace) -> dict[str, Any]:
    """Keyword options for the chosen detector from the ``run`` flags; a flag it cannot use is an error."""
    from anograph.detectors import accepts_option

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


def _run_pipeline(arguments: argparse.Namespace, dataset: str, root: Path, detector: str,
                  detector_options: dict[str, Any], fps: float | None) -> dict[str, Any]:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
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
    )


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
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
