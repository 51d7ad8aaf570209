"""The ``anograph`` command line: ``run`` a dataset, ``evaluate`` a trained model again, or the ``demo``.

The CLI only parses arguments (:mod:`~anograph.cli.parser`), translates them
(:mod:`~anograph.cli.options`) and hands them to the library (:mod:`~anograph.cli.commands`:
``score``, ``models``) or to a Prefect flow (:mod:`~anograph.cli.flows_runner`: ``run``,
``evaluate``, ``demo``). Errors that a user can cause are printed as one line naming the file
and the reason (exit code 2).
"""

from __future__ import annotations

import json
import sys

from anograph.cli.commands import models_command, score_command
from anograph.cli.options import detector_options_from
from anograph.cli.parser import build_parser
from anograph.errors import AnographError, InputError

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run one ``anograph`` command; 0 on success, 2 for an error the user can fix (printed in one line)."""
    arguments = build_parser().parse_args(argv)
    try:
        if arguments.command == "score":
            return score_command(arguments)
        if arguments.command == "models":
            return models_command(arguments)
        from anograph.cli.flows_runner import run_evaluate, run_pipeline

        if arguments.command == "demo":
            from anograph.datasets.synthetic import generate_synthetic_dataset

            data_root = arguments.out.resolve() / "data"
            generate_synthetic_dataset(data_root, seed=arguments.seed, interactions=True)
            report = run_pipeline(arguments, "synthetic", data_root, "motion", {}, None)
        else:
            from anograph.datasets import dataset_variant

            # The variant name (e.g. adoc-night) carries the options through the flows into the report.
            dataset = dataset_variant(arguments.dataset, scene=arguments.scene, adoc_split=arguments.adoc_split)
            if not arguments.root.is_dir():  # fail before Prefect spends seconds starting up
                raise InputError(arguments.root, "dataset root is not a folder")
            if arguments.command == "evaluate":
                report = run_evaluate(arguments, dataset, detector_options_from(arguments))
            else:
                report = run_pipeline(arguments, dataset, arguments.root, arguments.detector,
                                      detector_options_from(arguments), arguments.fps)
    except AnographError as error:
        print(f"anograph: error: {error}", file=sys.stderr)
        return 2
    headline = {key: report.get(key) for key in ("dataset", "detector", "default_scorer", "frame_auc_micro",
                                                 "frame_auc_macro", "n_test_frames", "n_anomalous_frames")}
    print(json.dumps(headline, indent=2))
    print(f"report: {arguments.out / 'report.md'}")
    return 0
