"""The ``anograph`` command line: ``run`` a dataset, ``evaluate`` a trained model again, or the ``demo``.

The CLI only parses arguments (:mod:`~anograph.cli.parser`), translates them
(:mod:`~anograph.cli.options`) and hands them to the library (:mod:`~anograph.cli.commands`:
``score``, ``models``, ``shards``) or to the commands that run a Prefect flow (``run``,
``evaluate``, ``demo``), which the caller hands in (:class:`FlowCommands`): the console script
``anograph`` is :func:`flows.cli.main`, so this library never imports its orchestration. Every option and the output folder are checked before any
work starts. Errors that a user can cause are printed as one line naming the file and the
reason (exit code 2); a flow run's tracebacks go to ``OUT/anograph.log``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anograph.cli.commands import models_command, score_command, shards_command
from anograph.cli.options import detector_options_from
from anograph.cli.parser import build_parser
from anograph.errors import AnographError, InputError

__all__ = ["LOG_FILE", "FlowCommands", "build_parser", "main"]

LOG_FILE = "anograph.log"
"""The log file of a flow run from the command line, in its output folder: every log line and traceback."""


@dataclass(frozen=True)
class FlowCommands:
    """The commands that run a flow, handed in by the orchestration layer (:mod:`flows.cli`).

    ``run_pipeline(arguments, dataset, root, detector, detector_options, fps)`` and
    ``run_evaluate(arguments, dataset)`` each return the evaluation report.
    """

    run_pipeline: Callable[..., dict[str, Any]]
    run_evaluate: Callable[..., dict[str, Any]]


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


def run_command(arguments: argparse.Namespace, flows: FlowCommands | None = None) -> int:
    """Run the parsed command; its report's headline is printed for the flow commands."""
    check_options(arguments)
    if arguments.command == "score":
        return score_command(arguments)
    if arguments.command == "models":
        return models_command(arguments)
    if arguments.command == "shards":
        return shards_command(arguments)
    if flows is None:
        raise InputError(None, f"'{arguments.command}' runs a Prefect flow: use the anograph command "
                               "(flows.cli:main), which provides the flows")
    run_pipeline, run_evaluate = flows.run_pipeline, flows.run_evaluate

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


def main(argv: list[str] | None = None, flows: FlowCommands | None = None) -> int:
    """Run one ``anograph`` command; 0 on success, 2 for an error the user can fix (printed in one line).

    ``flows`` runs ``run``, ``evaluate`` and ``demo``; without it only the library's own
    commands (``score``, ``models``, ``shards``) run.
    """
    arguments = build_parser().parse_args(argv)
    try:
        return run_command(arguments, flows)
    except AnographError as error:
        message = " ".join(str(error).split("\n"))
        log = arguments.out / LOG_FILE if getattr(arguments, "out", None) is not None else None
        details = f" (details in {log})" if log is not None and log.is_file() else ""
        print(f"anograph: error: {message}{details}", file=sys.stderr)
        return 2
