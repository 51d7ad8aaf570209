"""The ``anograph`` command line: ``run`` a dataset, ``evaluate`` a trained model again, or the ``demo``.

The CLI only parses arguments (:mod:`~anograph.cli.parser`), translates them
(:mod:`~anograph.cli.options`) and hands them to the library (:mod:`~anograph.cli.commands`:
``score``, ``models``, ``shards``) or to a Prefect flow (:mod:`~anograph.cli.flows_runner`:
``run``, ``evaluate``, ``demo``). Every option and the output folder are checked before any
work starts. Errors that a user can cause are printed as one line naming the file and the
reason (exit code 2); a flow run's tracebacks go to ``OUT/anograph.log``.
"""

from __future__ import annotations

import argparse
import json
import sys

from anograph.cli.commands import models_command, score_command, shards_command
from anograph.cli.options import detector_options_from
from anograph.cli.parser import build_parser
from anograph.cli.prefect_environment import LOG_FILE
from anograph.errors import AnographError, InputError

__all__ = ["build_parser", "main"]


def check_options(arguments: argparse.Namespace) -> None:
    """Check what argparse cannot before any work: numbers in range, the model name, the output folder."""
    from anograph.io.output_folder import prepare_output_folder

    for flag, minimum in (("epochs", 1), ("hidden", 1), ("batch_nodes", 1), ("batch_size", 1), ("min_frames", 1),
                          ("max_gap", 0), ("threads", 1), ("max_frames", 1)):
        value = getattr(arguments, flag, None)
        if value is not None and value < minimum:
            raise InputError(None, f"--{flag.replace('_', '-')} must be at least {minimum}, not {value}")
    for flag in ("window_seconds", "sigma", "fps"):
        value = getattr(arguments, flag, None)
        if value is not None and not value > 0:
            raise InputError(None, f"--{flag.replace('_', '-')} must be positive, not {value}")
    confidence = getattr(arguments, "confidence", None)
    if confidence is not None and not 0 <= confidence <= 1:
        raise InputError(None, f"--confidence must be between 0 and 1, not {confidence}")
    quantile = getattr(arguments, "threshold_quantile", None)
    if quantile is not None and not 0 < quantile < 1:
        raise InputError(None, f"--threshold-quantile must be between 0 and 1, not {quantile}")
    if getattr(arguments, "model_name", None):
        from anograph.ops.model_versions import check_model_name

        check_model_name(arguments.model_name)
    if getattr(arguments, "dataset", None) is not None:
        from anograph.datasets import dataset_variant

        dataset_variant(arguments.dataset, scene=arguments.scene, adoc_split=arguments.adoc_split)
    if getattr(arguments, "out", None) is not None:
        arguments.out = prepare_output_folder(arguments.out)


def run_command(arguments: argparse.Namespace) -> int:
    """Run the parsed command; its report's headline is printed for the flow commands."""
    check_options(arguments)
    if arguments.command == "score":
        return score_command(arguments)
    if arguments.command == "models":
        return models_command(arguments)
    if arguments.command == "shards":
        return shards_command(arguments)
    from anograph.cli.flows_runner import run_evaluate, run_pipeline

    if arguments.command == "demo":
        from anograph.datasets.synthetic import generate_synthetic_dataset

        data_root = arguments.out / "data"
        generate_synthetic_dataset(data_root, seed=arguments.seed, interactions=True)
        report = run_pipeline(arguments, "synthetic", data_root, "motion", {}, None)
    else:
        from anograph.datasets import dataset_variant

        # The variant name (e.g. adoc-night) carries the options through the flows into the report.
        dataset = dataset_variant(arguments.dataset, scene=arguments.scene, adoc_split=arguments.adoc_split)
        if not arguments.root.is_dir():  # fail before Prefect spends seconds starting up
            raise InputError(arguments.root, "dataset root is not a folder")
        if arguments.command == "evaluate":
            report = run_evaluate(arguments, dataset)
        else:
            report = run_pipeline(arguments, dataset, arguments.root, arguments.detector,
                                  detector_options_from(arguments), arguments.fps)
    from anograph.evaluation.report import headline_metrics

    print(json.dumps(headline_metrics(report), indent=2))
    version = (report.get("config") or {}).get("model_version")
    if version:
        print(f"model: {version['name']} version {version['version']} (current)")
    print(f"report: {arguments.out / 'report.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one ``anograph`` command; 0 on success, 2 for an error the user can fix (printed in one line)."""
    arguments = build_parser().parse_args(argv)
    try:
        return run_command(arguments)
    except AnographError as error:
        message = " ".join(str(error).split("\n"))
        log = arguments.out / LOG_FILE if getattr(arguments, "out", None) is not None else None
        details = f" (details in {log})" if log is not None and log.is_file() else ""
        print(f"anograph: error: {message}{details}", file=sys.stderr)
        return 2
