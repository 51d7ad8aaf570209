"""The ``anograph`` argument parser: every command, flag, default and help text, and nothing else."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import Any, NoReturn

from anograph import __version__
from anograph.cli.model_choice import VERSION_HELP
from anograph.defaults import (
    DEFAULT_SCORER,
    DEFAULT_SMOOTHING_SIGMA,
    DEFAULT_WINDOW_SECONDS,
    FALLBACK_SCORER,
    REFERENCE_MAX_EPOCHS,
)
from anograph.models.estimator import SCORERS, AnoGraph

DESCRIPTION = ("Ano-Graph video anomaly detection: detect objects, build a spatio-temporal graph of them, "
               "score it. Run 'anograph COMMAND --help' for a command's options.")
DEFAULT_EPOCHS = inspect.signature(AnoGraph).parameters["max_epochs"].default
"""The model's default ``max_epochs``, shown in ``--epochs``'s help."""


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (exit code 2), as the CLI's other errors are."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"anograph: error: {self.prog}: {message} (see '{self.prog} --help')\n")


def add_scorer_option(parser: argparse.ArgumentParser, purpose: str) -> None:
    """``--scorer``, one of :data:`anograph.models.estimator.SCORERS` (checked before any work starts)."""
    parser.add_argument("--scorer", choices=SCORERS, default=None, metavar="SCORER",
                        help=f"{purpose}: one of {', '.join(SCORERS)} (default {DEFAULT_SCORER}; "
                             f"{FALLBACK_SCORER} for a model without it)")


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    """The flags of a run that trains (``run``, ``demo``)."""
    parser.add_argument("--out", required=True, type=Path, help="folder for report.json, report.md and plots")
    parser.add_argument("--storage", default=None,
                        help="storage root for shards, models and reports: a path, file:// or s3://bucket/prefix; "
                             "default OUT/store")
    parser.add_argument("--s3-endpoint", default=None,
                        help="endpoint URL of an S3-compatible server for an s3:// storage root "
                             "(default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS)")
    parser.add_argument("--window-seconds", type=float, default=DEFAULT_WINDOW_SECONDS,
                        help="test window half-width i in seconds (default 1.0, the paper's choice)")
    add_scorer_option(parser, "default scorer for the headline AUC and the alerts")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"maximum DGI training epochs, with early stopping (default {DEFAULT_EPOCHS} when "
                             f"--scorer reads the GCN, else {REFERENCE_MAX_EPOCHS}: the GCN then serves the "
                             "paper's reference scorers only)")
    parser.add_argument("--model-name", default=None,
                        help="model line to add the new version to (default DATASET-<extraction fingerprint>)")
    parser.add_argument("--hidden", type=int, default=None, help="GCN hidden channels (default 512)")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default=None,
                        help="dtype of training's dense products (default float32; bfloat16 pays on GPUs and CPUs "
                             "with native bf16, and is about 8x slower on AVX2-only CPUs)")
    parser.add_argument("--sigma", type=float, default=DEFAULT_SMOOTHING_SIGMA,
                        help="Gaussian smoothing sigma for the smoothed AUCs")
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
    add_ablation_options(parser)


def add_ablation_options(parser: argparse.ArgumentParser) -> None:
    """The ablation flags (``run``, ``evaluate``, ``demo``)."""
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


def add_source_options(parser: argparse.ArgumentParser, detector_default: str | None = "yolox") -> None:
    """The dataset and detector options ``run`` and ``evaluate`` share (shards are keyed by them).

    ``detector_default`` ``None`` (``evaluate``): the detector is the model's own.
    """
    parser.add_argument("--dataset", required=True,
                        help="ucsd-ped1, ucsd-ped2, avenue, shanghaitech, street-scene, adoc, folder or synthetic")
    parser.add_argument("--root", required=True, type=Path, help="dataset root folder")
    parser.add_argument("--scene", default=None,
                        help="shanghaitech only: one scene (01 ... 13) instead of all 13 pooled")
    parser.add_argument("--adoc-split", default=None, choices=("day", "night", "all"),
                        help="adoc only: day, night or all footage, for training and testing (default all)")
    parser.add_argument("--detector", default=detector_default,
                        help="yolox, motion, torchvision, detectron2 or precomputed (README: Detectors); default "
                             + (detector_default or "the model's own detector"))
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
    parser.add_argument("--confidence", type=float, default=None,
                        help="detector confidence threshold (default: the detector's own, 0.3 for yolox and "
                             "torchvision, the paper's for detectron2)")
    parser.add_argument("--tiles", type=int, default=None,
                        help="yolox only: also detect on an N x N grid of overlapping tiles, merged with the "
                             "full frame (finds small, far objects; costs about N*N + 1 detector passes a frame; "
                             "default 1, the full frame only)")
    parser.add_argument("--fps", type=float, default=None, help="frame rate when the videos do not say")


def add_score_command(commands: Any) -> None:
    """``anograph score``: score a video, frame folder or stream with a trained model."""
    score = commands.add_parser("score", help="score a video, frame folder or live stream with a trained model")
    score.add_argument("source", help="video file or frame folder; with --stream also a camera index or URL")
    score.add_argument("--model", required=True,
                       help="model folder or URI (.../versions/<version>/model), or with --storage a model name "
                            "or dataset (see anograph models list)")
    score.add_argument("--version", default="current", help=VERSION_HELP)
    score.add_argument("--storage", default=None, help="storage root holding the model named by --model")
    score.add_argument("--out", required=True, type=Path, help="output folder (see README, Scoring outputs)")
    add_scorer_option(score, "scorer of the frame scores and alerts")
    score.add_argument("--threshold-quantile", type=float, default=None,
                       help="alert threshold = this quantile of the normal training frame scores "
                            "(default: the model's calibration default, 0.99)")
    score.add_argument("--weights", default=None, help="detector weights file (YOLOX ONNX) the model was trained with")
    score.add_argument("--fps", type=float, default=None, help="frame rate when the source does not say")
    score.add_argument("--camera", default="",
                       help="the camera that filmed the source, for a model trained on several cameras (e.g. a "
                            "ShanghaiTech scene such as 01); default: a model of one camera")
    score.add_argument("--window-seconds", type=float, default=DEFAULT_WINDOW_SECONDS,
                       help="test window half-width (default 1.0)")
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


def add_models_command(commands: Any) -> None:
    """``anograph models``: the model registry."""
    models = commands.add_parser("models", help="the model registry: list, show, promote, rollback")
    models.add_argument("action", choices=("list", "show", "promote", "rollback"))
    models.add_argument("version", nargs="?", default=None,
                        help="version id (show: default current; promote: required)")
    models.add_argument("--storage", required=True, help="storage root (path or URI) holding models/ or registry/")
    models.add_argument("--s3-endpoint", default=None,
                        help="endpoint URL of an S3-compatible server for an s3:// storage root")
    models.add_argument("--model", default=None,
                        help="show, promote, rollback: the model line (name or dataset; default the nightly "
                             "registry)")
    models.add_argument("--reason", default="by hand (anograph models)", help="reason kept in the history")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every ``anograph`` command: ``run``, ``evaluate``, ``demo``, ``score``, ``models``."""
    parser = OneLineErrorParser(prog="anograph", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"anograph {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="extract, train and evaluate on a dataset")
    add_source_options(run)
    add_pipeline_options(run)

    evaluate = commands.add_parser(
        "evaluate", help="score an existing model on a dataset again, reusing the feature shards that exist")
    add_source_options(evaluate, detector_default=None)
    evaluate.add_argument("--model", required=True,
                          help="model name or dataset (see anograph models list), or the model's folder: a key "
                               "under the storage root or the path the run printed")
    evaluate.add_argument("--version", default="current", help=VERSION_HELP)
    evaluate.add_argument("--storage", default=None,
                          help="storage root (path or URI) holding the model and shards; default OUT/store")
    evaluate.add_argument("--s3-endpoint", default=None,
                          help="endpoint URL of an S3-compatible server for an s3:// storage root")
    evaluate.add_argument("--out", required=True, type=Path, help="folder for report.json, report.md and plots")
    evaluate.add_argument("--no-appearance", action="store_true", help="the shards have no appearance embedding")
    evaluate.add_argument("--window-seconds", type=float, default=DEFAULT_WINDOW_SECONDS,
                          help="test window half-width i in seconds")
    add_scorer_option(evaluate, "default scorer for the headline AUC")
    evaluate.add_argument("--sigma", type=float, default=DEFAULT_SMOOTHING_SIGMA,
                          help="Gaussian smoothing sigma for the smoothed AUCs")
    add_ablation_options(evaluate)

    demo = commands.add_parser("demo", help="run the whole pipeline on a generated synthetic scene")
    demo.add_argument("--seed", type=int, default=0, help="seed of the synthetic scene")
    add_pipeline_options(demo)
    add_score_command(commands)
    add_models_command(commands)
    add_shards_command(commands)
    return parser


def add_shards_command(commands: Any) -> None:
    """``anograph shards show FILE``: what a feature shard holds."""
    shards = commands.add_parser("shards", help="show a feature shard's layout, counts and first rows")
    shards.add_argument("action", choices=("show",))
    shards.add_argument("file", type=Path, help="the shard (.parquet)")
    shards.add_argument("--rows", type=int, default=5, help="rows to print (default 5)")
