"""The commands that run a Prefect flow: ``run`` and ``demo`` (the pipeline) and ``evaluate``.

This is the one module of the library that imports the orchestration (``flows``), and only
inside these functions, when a flow really runs: importing ``anograph`` or running
``anograph score`` never imports Prefect (``tests/test_layering.py`` holds it to that).
Cheap checks run first, so a bad flag or storage root fails before Prefect starts.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from anograph.cli.options import ablations_from, model_options_from
from anograph.cli.prefect_environment import quiet_prefect
from anograph.errors import InputError
from anograph.io.storage import Storage, with_endpoint


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

    return pipeline(
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


def run_evaluate(arguments: argparse.Namespace, dataset: str, detector_options: dict[str, Any]) -> dict[str, Any]:
    """Evaluate a stored model on ``dataset`` again, reusing shards (the ``evaluate`` flow); return the report."""
    quiet_prefect()
    storage = with_endpoint(arguments.storage, arguments.s3_endpoint)
    Storage(storage)  # a bad root or a missing bucket fails here, before Prefect starts
    from flows.evaluate import evaluate  # Prefect is imported only when a flow really runs

    return evaluate(
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
        ablations=ablations_from(arguments),
    )
