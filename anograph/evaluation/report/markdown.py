"""The report for people: ``report.md`` rendered from the ``report.json`` dictionary.

:func:`report_markdown` lays out the headline table, the scorer comparison, tables in the
paper's layouts (Tables 1-5, published figures beside ours and labelled as such), per-video
results, skipped videos, stage timings, the choices made and the embedded plots. It reads
only the report dictionary, so a stored ``report.json`` renders the same Markdown again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from anograph.evaluation.published import PUBLISHED_ABLATIONS
from anograph.evaluation.report.alert_threshold import threshold_markdown
from anograph.evaluation.report.selection_markdown import selection_markdown


def format_metric(value: float | None, digits: int = 3) -> str:
    """A metric as printed in reports: ``digits`` decimals, ``"n/a"`` where undefined."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def _protocol_markdown(report: Mapping[str, Any]) -> list[str]:
    """The paper's table layouts (Tables 1-5), our figures beside the published ones."""
    default = report["default_scorer"]
    dataset = report["dataset"]
    published = report.get("published") or {}
    printed = published.get("metrics", {})
    label = "*published, not our run*"
    sigma = report["smoothing_sigma"]
    lines = [
        "",
        "## Tables laid out like the paper's",
        "",
        "Figures in % as the paper prints them. Rows marked *published, not our run* are copied from the "
        f"paper ({published.get('source', 'it has no figure for this dataset')}); every other row is this run.",
        "",
        f"### Frame-level AUC (Table 1 layout), {dataset}",
        "",
        f"| method | micro AUC | macro AUC | micro AUC σ={sigma:g} | macro AUC σ={sigma:g} |",
        "|---|---|---|---|---|",
    ]
    for name, metrics in report["scorers"].items():
        shown = f"**anograph `{name}`** (default)" if name == default else f"anograph `{name}`"
        lines.append(
            f"| {shown} | {_percent(metrics['frame_auc_micro'])} | {_percent(metrics['frame_auc_macro'])} | "
            f"{_percent(metrics['frame_auc_micro_smoothed'])} | {_percent(metrics['frame_auc_macro_smoothed'])} |"
        )
    if "frame_auc" in printed:
        lines.append(f"| Ano-Graph, {label} | {printed['frame_auc']:g} (averaging not stated) | | | |")

    youden = report["youden"]
    lines += [
        "",
        "### At the threshold maximising TPR − FPR (Table 2 layout)",
        "",
        "Pooled frames, unsmoothed scores; the threshold is chosen on the test labels by definition of the "
        "metric. nlilo-accuracy: not computed (see *Choices made*).",
        "",
        "| method | TN | FN | TP | FP | AUC | accuracy | nlilo-accuracy | threshold |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, counts in youden.items():
        shown = f"**anograph `{name}`**" if name == default else f"anograph `{name}`"
        lines.append(
            f"| {shown} | {counts['true_negatives']} | {counts['false_negatives']} | {counts['true_positives']} | "
            f"{counts['false_positives']} | {_percent(report['scorers'][name]['frame_auc_micro'])} | "
            f"{_percent(counts['accuracy'])} | n/a | {format_metric(counts['threshold'], 4)} |"
        )
    if "accuracy" in printed:
        lines.append(
            f"| Ano-Graph, {label} | {printed['true_negatives']} | {printed['false_negatives']} | "
            f"{printed['true_positives']} | {printed['false_positives']} | {printed['frame_auc']:g} | "
            f"{printed['accuracy']:g} | {printed['nlilo_accuracy']:g} | |"
        )

    regions = report["region_metrics"]
    lines += ["", "### Region- and track-based criteria (Table 3 layout)", ""]
    if regions["available"]:
        lines += [
            f"β = {regions['beta']:g} (IoU for a detected region), α = {regions['alpha']:g} (share of a track's "
            f"regions); {regions['n_regions']} anomalous regions in {regions['n_tracks']} tracks over "
            f"{regions['n_frames']} frames. RBDC / TBDC: area under detection rate vs false positives per frame, "
            "FPR 0 to 1. RBDR / TBDR: detection rate at the stated false positives per frame.",
            "",
            "| method | AUC | TBDC | RBDC | TBDR @0.01 | RBDR @0.01 | TBDR @0.1 | RBDR @0.1 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, values in regions["scorers"].items():
            shown = f"**anograph `{name}`**" if name == default else f"anograph `{name}`"
            lines.append(
                f"| {shown} | {_percent(report['scorers'][name]['frame_auc_micro'])} | {_percent(values['tbdc'])} | "
                f"{_percent(values['rbdc'])} | {_percent(values['tbdr_at_0.01'])} | {_percent(values['rbdr_at_0.01'])} | "
                f"{_percent(values['tbdr_at_0.1'])} | {_percent(values['rbdr_at_0.1'])} |"
            )
        if "track_detection" in printed:
            lines.append(
                f"| Ano-Graph, {label} | {printed['frame_auc']:g} | {printed['track_detection']:g} | "
                f"{printed['region_detection']:g} | | | | |"
            )
        if published.get("note"):
            lines += ["", published["note"]]
    else:
        lines.append(f"Not computed: {regions['reason']}.")

    for name, ablation in report["ablations"].items():
        lines += _ablation_markdown(name, ablation, dataset, default)
    return lines


_ABLATION_TITLES = {
    "edges": ("Ablation: edge types (Table 4 layout)", "edges"),
    "window": ("Ablation: test window i, one model, no retraining (Table 5 layout)", "i"),
    "training_fraction": ("Ablation: share of training frames kept (Fig. 4)", "training frames kept"),
}


def _per_video_variants(name: str, variants: Mapping[str, Any]) -> list[str]:
    """Per-video AUCs of the attribute ablation: per-object attributes and graph context side by side."""
    if name != "attributes" or len(variants) < 2:
        return []
    scorer = next(iter(next(iter(variants.values()))))
    videos = list(next(iter(variants.values()))[scorer].get("per_video_auc", {}))
    if not videos:
        return []
    lines = ["", "Per test video (AUC, unsmoothed; `n/a` for single-class videos). The `interaction` attribute is "
             "the graph context; the ensemble without it is what per-object attributes alone see.", "",
             "| video | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for video in videos:
        cells = [format_metric(per_scorer[scorer]["per_video_auc"].get(video)) for per_scorer in variants.values()]
        lines.append(f"| {video} | " + " | ".join(cells) + " |")
    return lines


def _ablation_markdown(name: str, ablation: Mapping[str, Any], dataset: str, default: str) -> list[str]:
    title, column = _ABLATION_TITLES.get(name, (f"Ablation: {name}", "variant"))
    variants = ablation["variants"]
    scorers = list(next(iter(variants.values()), {}))
    lines = ["", f"### {title}", ""]
    if ablation.get("note"):
        lines += [ablation["note"], ""]
    lines += [
        "Micro / macro frame AUC in %, unsmoothed.",
        "",
        f"| {column} | " + " | ".join(f"`{scorer}`" + (" (default)" if scorer == default else "") for scorer in scorers)
        + " |",
        "|---|" + "---|" * len(scorers),
    ]
    for variant, per_scorer in variants.items():
        cells = [
            f"{_percent(per_scorer[scorer]['frame_auc_micro'])} / {_percent(per_scorer[scorer]['frame_auc_macro'])}"
            for scorer in scorers
        ]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += _per_video_variants(name, variants)
    published = PUBLISHED_ABLATIONS.get(name, {})
    printed = published.get("values", {})
    if printed:
        rows = "; ".join(
            f"{data}: " + ", ".join(f"{variant} {value:g}" for variant, value in values.items())
            for data, values in printed.items()
        )
        lines += ["", f"Published, not our run ({published['source']}): {rows}."]
    elif published:
        lines += ["", f"Published ({published['source']})."]
    return lines


def gcn_training_note(training: Mapping[str, Any], default: str) -> str:
    """What the report says of the GCN's training (``config.training``: its ``gcn``, epochs and seconds)."""
    gcn, epochs = training["gcn"], training["n_epochs"]
    train_seconds = (training.get("seconds") or {}).get("train")
    seconds = "" if train_seconds is None else f", {train_seconds:.1f} s"
    groups = gcn.get("feature_groups")  # absent in reports written before the input was recorded
    reads = "" if not groups else (f" It read the node-feature groups {', '.join(f'`{name}`' for name in groups)}, "
                                   f"{gcn.get('feature_scaling', 'group')}-scaled.")
    if gcn.get("role") == "reference":
        return (f"GCN training: the default scorer `{default}` does not read the trained GCN, so it scores the same "
                f"after any amount of training; the GCN was trained for at most {gcn['max_epochs']} epochs "
                f"({epochs} run{seconds}), only for the paper's reference scorers (`discriminator`, `knn`). "
                f"Their figures here are therefore not from a full training; `--epochs` sets a full budget.{reads}")
    return (f"GCN training: the default scorer `{default}` reads the trained GCN; {epochs} epochs of at most "
            f"{gcn['max_epochs']}{seconds}, with early stopping on the training loss.{reads}")


def report_markdown(report: Mapping[str, Any]) -> str:
    """``report.md``: the report dictionary (with ``images`` once plots are written) as Markdown."""
    sigma = report["smoothing_sigma"]
    default = report["default_scorer"]
    lines = [
        f"# Anomaly detection report: {report['dataset']}",
        "",
        f"Detector: `{report['detector']}`. Default scorer: `{default}`. Created {report['created_at']}.",
        "",
        "## Headline (default scorer)",
        "",
        f"| metric | unsmoothed | smoothed (σ={sigma:g} frames) |",
        "|---|---|---|",
        f"| frame AUC, micro (all frames pooled) | {format_metric(report['frame_auc_micro'])} | {format_metric(report['frame_auc_micro_smoothed'])} |",
        f"| frame AUC, macro (mean per video, `{report['macro_convention']}`) | {format_metric(report['frame_auc_macro'])} | {format_metric(report['frame_auc_macro_smoothed'])} |",
        f"| equal error rate (pooled) | {format_metric(report['equal_error_rate'])} | |",
        "",
        f"{report['n_test_videos']} test videos, {report['n_test_frames']} frames, of which "
        f"{report['n_anomalous_frames']} anomalous; {report['n_single_class_videos']} video(s) are entirely normal or "
        "entirely anomalous.",
        "",
        "## Scorers",
        "",
        f"| scorer | micro AUC | macro AUC | micro AUC σ={sigma:g} | macro AUC σ={sigma:g} | EER |",
        "|---|---|---|---|---|---|",
    ]
    for name, metrics in report["scorers"].items():
        shown = f"**{name}** (default)" if name == default else name
        lines.append(
            f"| {shown} | {format_metric(metrics['frame_auc_micro'])} | {format_metric(metrics['frame_auc_macro'])} | "
            f"{format_metric(metrics['frame_auc_micro_smoothed'])} | {format_metric(metrics['frame_auc_macro_smoothed'])} | "
            f"{format_metric(metrics['equal_error_rate'])} |"
        )
    lines += _protocol_markdown(report)
    lines += selection_markdown(report.get("config", {}).get("model_selection"))
    lines += threshold_markdown(report.get("alert_threshold"))
    lines += [
        "",
        "## Per video (default scorer, unsmoothed)",
        "",
        "| video | frames | anomalous | AUC | AUC padded |",
        "|---|---|---|---|---|",
    ]
    for name, video in report["per_video"].items():
        lines.append(
            f"| {name} | {video['frames']} | {video['anomalous_frames']} | {format_metric(video['auc'])} | {format_metric(video['auc_padded'])} |"
        )
    if report.get("skipped_videos"):
        lines += ["", "## Skipped videos", "",
                  "These videos could not be read and were left out (`--skip-bad-videos`):", "",
                  "| split | video | path | reason |", "|---|---|---|---|"]
        lines += [f"| {video['split']} | {video['video']} | `{video['path']}` | {video['reason']} |"
                  for video in report["skipped_videos"]]
    lines += ["", "## Time per stage", ""]
    if report["stage_seconds"]:
        lines += ["| stage | seconds |", "|---|---|"]
        lines += [
            f"| {stage} | {format_metric(seconds, 1)} |" for stage, seconds in report["stage_seconds"].items()
        ]
        total = sum(seconds for seconds in report["stage_seconds"].values() if seconds is not None)
        lines.append(f"| **total** | {total:.1f} |")
    else:
        lines.append("No stage timings were recorded.")
    convention_text = (
        "each video gets one extra normal frame scored at its minimum and one extra anomalous frame scored at its "
        "maximum, so videos that are entirely anomalous (or entirely normal) still have an AUC"
        if report["macro_convention"] == "pad"
        else "videos that are entirely normal or entirely anomalous have no AUC of their own and are left out"
    )
    lines += [
        "",
        "## Choices made",
        "",
        f"- Default scorer `{default}`: {report['default_scorer_reason']}",
        f"- Frames without any detected object score the {report['empty_frames']}, so they rank as the most normal frames.",
        f"- Smoothed figures use a Gaussian along time with σ={sigma:g} frames per video (edges extended); "
        "unsmoothed figures are the primary ones.",
        f"- Macro AUC convention `{report['macro_convention']}`: {convention_text}.",
        "- Micro AUC pools every test frame into one ROC curve.",
        f"- {report.get('nlilo_accuracy_note', '')}",
    ]
    training = report.get("config", {}).get("training", {})
    if training.get("gcn"):
        lines.append(f"- {gcn_training_note(training, default)}")
    if report["config"]:
        lines += [
            "",
            "Run settings:",
            "",
            "```json",
            json.dumps(report["config"], indent=2, sort_keys=True),
            "```",
        ]
    images = report.get("images", {})
    if images:
        lines += ["", "## Plots", "", f"![ROC curves]({images['roc']})", ""]
        if images.get("embedding"):
            lines += [
                "Embedding map (the paper's Fig. 3): t-SNE of test-object GCN embeddings, coloured by score.",
                "",
                f"![embedding map]({images['embedding']})",
                "",
            ]
        for video, image in images["scores"].items():
            lines += [f"![{video} scores]({image})", ""]
    return "\n".join(lines).rstrip() + "\n"
