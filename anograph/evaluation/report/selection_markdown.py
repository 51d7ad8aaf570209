"""The report's "Model selection" section: how the default scorer's attributes were chosen.

The choice is made on the training videos alone (:mod:`anograph.selection`); this section
shows every candidate with its held-out pseudo-anomaly figures, so a reader can check that no
test label was involved and see how close the runner-up was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _auc(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def candidate_label(candidate: Mapping[str, Any]) -> str:
    """``a + b`` for a sum of attributes, ``max(a, b)`` for their maximum (:mod:`anograph.attributes.ensemble`)."""
    labels = list(candidate["attributes"])
    if candidate.get("combination", "sum") == "max" and len(labels) > 1:
        return f"max({', '.join(labels)})"
    return " + ".join(labels)


def selection_markdown(selection: Mapping[str, Any] | None) -> list[str]:
    """Markdown lines of the section, or none when the model has no attribute scorer.

    A model with one attribute model per camera (:mod:`anograph.models.camera_scoring`) gets a line
    per camera with its choice, then each camera's candidates.
    """
    if not selection:
        return []
    cameras = selection.get("cameras")
    first = next(iter(cameras.values())) if cameras else selection
    kinds = ", ".join(f"`{kind}`" for kind in first["kinds"])
    lines = [
        "",
        "## Model selection (training footage only)",
        "",
        "The `attributes` scorer's attributes, the rule combining them and the velocity and speed variants were chosen by "
        f"{first['protocol']}" + (" (for each camera on its own footage)" if cameras else
                                  f", over {first['n_folds']} folds of training videos") + ". Each figure is "
        "the frame AUC between held-out normal frames and the same frames with a third of their tracks made "
        f"pseudo-anomalous (kinds: {kinds}). "
        "The test labels were not read. The GCN trained with DGI is not one of the attributes: it "
        "serves the `discriminator` and `knn` rows. Put through this protocol on Ped2's training footage "
        "(`bench/gcn_validation.py`), its embedding kNN added nothing beside the attributes and its "
        "discriminator was at chance, so the selection does not pay for one GCN per fold. `shape`, and the "
        "velocity variants that read a box's place or height, judge a box the frame's edge cuts on what the cut "
        "leaves intact (docs/model-selection.md).",
    ]
    if not cameras:
        return lines + _choice_lines(selection)
    lines += ["", f"The training videos come from {len(cameras)} cameras, and each camera's normal footage chose and "
              "fitted its own ensemble (docs/model-selection.md#several-cameras).", "",
              "| camera | folds | chosen | validation mean |", "|---|---|---|---|"]
    lines += [f"| {camera} | {own['n_folds']} | {candidate_label(own['chosen'])}{_smoothing(own['chosen'])} | {_auc(own['chosen']['mean_auc'])} |"
              for camera, own in cameras.items()]
    for camera, own in cameras.items():
        lines += ["", f"### Camera {camera}"] + _choice_lines(own)
    return lines


def _smoothing(chosen: Mapping[str, Any]) -> str:
    radius = chosen.get("track_radius")
    return f", averaged along tracks over {radius} frames each side" if radius else ""


def _choice_lines(selection: Mapping[str, Any]) -> list[str]:
    """The choice and the table of every candidate of one selection."""
    kinds = list(selection["kinds"])
    chosen = selection["chosen"]
    lines = [
        "",
        f"Chosen: **{candidate_label(chosen)}**{_smoothing(chosen)}.",
        "",
        "| step | attributes | " + " | ".join(kinds) + " | mean |",
        "|---|---|" + "---|" * (len(kinds) + 1),
    ]
    for candidate in selection["candidates"]:
        same = (candidate["attributes"] == chosen["attributes"]
                and candidate.get("combination", "sum") == chosen.get("combination", "sum"))
        mark = "**" if candidate["step"] == "attributes" and same else ""
        cells = [_auc(candidate["aucs"].get(kind)) for kind in kinds]
        lines.append(f"| {candidate['step']} | {mark}{candidate_label(candidate)}{mark} | "
                     + " | ".join(cells) + f" | {_auc(candidate['mean_auc'])} |")
    lines += [f"- {note}" for note in selection.get("notes", [])]
    return lines
