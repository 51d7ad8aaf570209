"""Translate parsed ``anograph`` flags into the options the library and the flows take."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from anograph.defaults import DEFAULT_TRAINING_FRACTIONS, DEFAULT_WINDOW_RADII
from anograph.errors import InputError


def comma_separated_numbers(text: str | None, kind: type, option: str) -> list[Any]:
    """``"1,3,5"`` as numbers of ``kind``; an :class:`InputError` naming ``option`` otherwise."""
    if not text:
        return []
    try:
        return [kind(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise InputError(None, f"{option} takes comma-separated numbers, not {text!r}") from error


def ablations_from(arguments: argparse.Namespace) -> dict[str, Any]:
    """The ``ablations`` of the evaluation flows from the ablation flags (``--all-ablations`` fills the gaps)."""
    ablations: dict[str, Any] = {
        "edges": arguments.ablate_edges,
        "window_radii": comma_separated_numbers(arguments.window_sweep, int, "--window-sweep"),
        "training_fractions": comma_separated_numbers(arguments.training_fractions, float, "--training-fractions"),
        "embedding": arguments.embedding_map,
        "seed": arguments.ablation_seed,
    }
    if arguments.all_ablations:
        ablations.update(edges=True, embedding=True,
                         window_radii=ablations["window_radii"] or list(DEFAULT_WINDOW_RADII),
                         training_fractions=ablations["training_fractions"] or list(DEFAULT_TRAINING_FRACTIONS))
    return ablations


def model_options_from(arguments: argparse.Namespace) -> dict[str, Any]:
    """JSON-friendly model options from the training flags; flags not given keep the model's defaults."""
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


def detector_options_from(arguments: argparse.Namespace) -> dict[str, Any]:
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
             "batch_size": ("--batch-size", arguments.batch_size),
             "tiles": ("--tiles", arguments.tiles)}
    for option, (flag, value) in flags.items():
        if value is None:
            continue
        if not accepts_option(name, option):
            raise InputError(None, f"{flag} does not apply to --detector {name}")
        options[option] = str(Path(value).resolve()) if option in ("weights", "config", "root") else value
    if accepts_option(name, "device"):
        options["device"] = arguments.device
    return options
