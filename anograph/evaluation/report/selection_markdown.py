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
    beside = f" beside the {candidate['motion_field']}" if candidate.get("motion_field") else ""
    if candidate.get("combination", "sum") == "max" and len(labels) > 1:
        return f"max({', '.join(labels)}){beside}"
    return " + ".join(labels) + beside


def selection_markdown(selection: Mapping[str, Any] | None) -> list[str]:
    """Markdown lines of the section, or none when the model has no attribute scorer.

    A model of several cameras (:mod:`anograph.models.camera_scoring`) gets a line per camera (its own
    ensemble's validation against the shared model's on its videos, and which it uses), then the
    candidates of each camera that kept its own and of the shared model.
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
        f"{first['protocol']}" + ("" if cameras else f", over {first['n_folds']} folds of training videos")
        + ". Each figure is "
        "the frame AUC between held-out normal frames and the same frames with a third of their tracks made "
        f"pseudo-anomalous (kinds: {kinds}). "
        "The test labels were not read. The GCN trained with DGI is not one of the attributes: it "
        "serves the `discriminator` and `knn` rows. Put through this protocol on Ped2's training footage "
        "(`bench/gcn_validation.py`), its embedding kNN added nothing beside the attributes and its "
        "discriminator was at chance, so the selection does not pay for one GCN per fold. `shape`, and the "
        "velocity variants that read a box's place or height, judge a box the frame's edge cuts on what the cut "
        "leaves intact (docs/model-selection.md). Where the shards hold cell speeds, the last step puts the motion "
        "field (each frame's fastest place, read with no detection) beside the chosen ensemble or not, judged also "
        "on `missed` (a fast track taken out of the object list, as an anomaly the detector missed).",
    ]
    choice = selection.get("camera_choice") or []
    if choice:
        lines += ["", f"The training videos come from {len(choice)} cameras. The selection ran on each camera's videos "
                  "alone and on all of them (the shared model); a camera keeps its own ensemble where it validates "
                  "better, by more than 0.01, than the shared one on that camera's held-out videos "
                  "(docs/model-selection.md#several-cameras).", "",
                  "| camera | training videos | own ensemble | its validation | shared model on this camera | uses |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {entry['camera']} | {entry['videos']} | {candidate_label(entry['own'])}{_smoothing(entry['own'])} "
                  f"| {_auc(entry['own']['mean_auc'])} | {_auc(entry['shared']['mean_auc'])} | {entry['uses']} |"
                  for entry in choice]
    if not cameras:
        return lines + _choice_lines(selection)
    shared = [entry["camera"] for entry in choice if entry["uses"] == "shared"]
    for camera, own in cameras.items():
        if camera not in shared:
            lines += ["", f"### Camera {camera}"] + _choice_lines(own)
    if shared:
        lines += ["", f"### Shared model (cameras {', '.join(shared)})"] + _choice_lines(cameras[shared[0]])
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
