"""The ``anograph`` command: the library's CLI (:mod:`anograph.cli`) with the commands that run a flow.

``run`` and ``demo`` run the ``pipeline`` flow and ``evaluate`` the ``evaluate`` flow; the
library's CLI parses, checks and dispatches, and is handed these two functions
(:class:`anograph.cli.FlowCommands`), so the library never imports its orchestration.
The flows are imported inside the functions, when a flow really runs, so ``anograph score``
never imports Prefect. Cheap checks run first, so a bad flag or storage root fails before
Prefect starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from anograph.cli import FlowCommands
from anograph.cli import main as library_main
from anograph.cli.model_choice import record_of_model_key, resolve_model_key
from anograph.cli.options import ablations_from, model_options_from
from anograph.errors import InputError
from anograph.io.storage import Storage, with_endpoint
from flows.prefect_environment import flow_log, quiet_prefect


def run_pipeline(arguments: argparse.Namespace, dataset: str, root: Path, detector: str,
                 detector_options: dict[str, Any], fps: float | None) -> dict[str, Any]:
    """Extract, train and evaluate on ``dataset`` (the ``pipeline`` flow); return the report."""
    if arguments.batch_nodes is not None and arguments.batch_nodes < 1:  # fail before Prefect starts
        raise InputError(None, f"--batch-nodes must be at least 1, not {arguments.batch_nodes}")
    quiet_prefect()
    out = arguments.out.resolve()
    storage = with_endpoint(arguments.storage or str(out / "store"), arguments.s3_endpoint)
    Storage(storage)  # a bad root or a missing bucket fails here, before Prefect starts
    from flows.pipeline import pipeline  # Prefect is imported only when a flow really runs

    with flow_log(out):
        return pipeline(
        model_name=arguments.model_name,
        dataset=dataset,
        root=str(root.resolve()),
        detector=detector,
        detector_options=detector_options,
        out=str(out),
        storage=storage,
        fps=fps,
        window_seconds=arguments.window_seconds,
        model_options=model_options_from(arguments),
        appearance=not arguments.no_appearance,
        appearance_options={"device": getattr(arguments, "device", "cpu")},
        default_scorer=arguments.scorer,
        smoothing_sigma=arguments.sigma,
        skip_bad_videos=arguments.skip_bad_videos,
        ablations=ablations_from(arguments),
        batch_nodes=arguments.batch_nodes,
        )


def evaluation_settings(storage: Storage, model_key: str, arguments: argparse.Namespace) -> dict[str, Any]:
    """The extraction settings to evaluate a stored model with: its own detector and feature groups.

    A versioned model's record holds the exact settings it was trained with (so its shards are
    reused); an older model folder gives them from its artifact. ``--weights`` is needed only
    when the model's detector has a weights hash and the recorded weights file is gone.
    """
    from anograph.models.estimator import AnoGraph
    from anograph.serving.inference import model_extraction_settings

    model = AnoGraph.load(storage, model_key)  # verifies every file of the model folder
    name = model.detector_.get("name")
    if arguments.detector not in (None, name):
        raise InputError(storage.location(model_key), f"the model was trained with --detector {name}, "
                                                      f"not {arguments.detector}; leave --detector out")
    settings = ((record_of_model_key(storage, model_key) or {}).get("config") or {}).get("extraction")
    recorded_weights = (settings or {}).get("detector_options", {}).get("weights")
    if settings is None or arguments.weights or (recorded_weights and not Path(recorded_weights).is_file()):
        settings = model_extraction_settings(model, arguments.weights).to_dict()
        if settings["appearance"]:
            settings["appearance_options"] = {"device": arguments.device}
    return settings


def run_evaluate(arguments: argparse.Namespace, dataset: str) -> dict[str, Any]:
    """Evaluate a stored model on ``dataset`` again, reusing shards (the ``evaluate`` flow); return the report."""
    quiet_prefect()
    out = arguments.out.resolve()
    storage = with_endpoint(arguments.storage or str(out / "store"), arguments.s3_endpoint)
    opened = Storage.open_existing(storage)  # a missing root or bucket fails here, before Prefect starts
    model_key = resolve_model_key(opened, arguments.model, arguments.version)
    settings = evaluation_settings(opened, model_key, arguments)
    from flows.evaluate import evaluate  # Prefect is imported only when a flow really runs

    with flow_log(out):
        return evaluate(dataset=dataset, root=str(arguments.root.resolve()), model_key=model_key, storage=storage,
                        out=str(out), settings=settings, fps=arguments.fps,
                        window_seconds=arguments.window_seconds, default_scorer=arguments.scorer,
                        smoothing_sigma=arguments.sigma, ablations=ablations_from(arguments))


def main(argv: list[str] | None = None) -> int:
    """Run one ``anograph`` command (the console script): 0 on success, 2 for an error the user can fix."""
    return library_main(argv, FlowCommands(run_pipeline=run_pipeline, run_evaluate=run_evaluate))


if __name__ == "__main__":
    sys.exit(main())
