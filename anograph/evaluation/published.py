"""Ano-Graph's PUBLISHED figures, for side-by-side comparison in reports. Not our runs.

Every number below is copied from the paper ("Ano-Graph: Learning Normal Scene Contextual
Graphs to Detect Video Anomalies", 2021; text in ``../shared/paper/ano-graph-2021.txt``),
with the table it comes from. Reports label them "published, not our run". Percentages
are kept as printed (AUC 96.68 means 0.9668).

Keys are this project's dataset names (see :mod:`anograph.datasets`): ADOC's three
experiments are ``adoc-day`` (Exp 1, day only), ``adoc-night`` (Exp 2, night only) and
``adoc`` (Exp 3, day and night).
"""

from __future__ import annotations

from typing import Any

PAPER = "Ano-Graph: Learning Normal Scene Contextual Graphs to Detect Video Anomalies (2021)"

#: dataset -> {"source": where in the paper, "metrics": {metric name: value as printed}}.
#: Metric names match report.json: frame_auc (frame-level AUC, %), the ADOC counts and
#: accuracies at the Youden threshold, and Street Scene's track / region detection figures.
PUBLISHED: dict[str, dict[str, Any]] = {
    "ucsd-ped2": {"source": "Table 1 (frame-level AUC %)", "metrics": {"frame_auc": 96.68}},
    "avenue": {"source": "Table 1 (frame-level AUC %)", "metrics": {"frame_auc": 86.2}},
    "shanghaitech": {"source": "Table 1 (frame-level AUC %)", "metrics": {"frame_auc": 74.42}},
    "adoc-day": {
        "source": "Table 2, Exp 1 (day only)",
        "metrics": {"true_negatives": 12348, "false_negatives": 13772, "true_positives": 37989,
                    "false_positives": 591, "frame_auc": 84.22, "accuracy": 77.8, "nlilo_accuracy": 72.6},
    },
    "adoc-night": {
        "source": "Table 2, Exp 2 (night only)",
        "metrics": {"true_negatives": 27109, "false_negatives": 573, "true_positives": 24706,
                    "false_positives": 18012, "frame_auc": 70.81, "accuracy": 73.6, "nlilo_accuracy": 84.1},
    },
    "adoc": {
        "source": "Table 2, Exp 3 (day and night)",
        "metrics": {"true_negatives": 51937, "false_negatives": 18902, "true_positives": 58035,
                    "false_positives": 6226, "frame_auc": 87.05, "accuracy": 81.4, "nlilo_accuracy": 89.5},
    },
    "street-scene": {
        "source": "Table 3 (%, labelled TBDR / RBDR in the paper)",
        "metrics": {"frame_auc": 72.61, "track_detection": 68.81, "region_detection": 65.72},
    },
}

#: Ablations as published. Table 4: AUC % by edge type; Table 5: Avenue AUC % by test window i.
PUBLISHED_ABLATIONS: dict[str, dict[str, Any]] = {
    "edges": {
        "source": "Table 4 (frame-level AUC %)",
        "values": {"avenue": {"spatial": 70.42, "temporal": 76.62, "both": 86.24},
                   "ucsd-ped2": {"spatial": 84.21, "temporal": 89.41, "both": 96.68}},
    },
    "window": {
        "source": "Table 5 (Avenue frame-level AUC %, one model, no retraining)",
        "values": {"avenue": {"1": 83.32, "3": 84.12, "5": 84.69, "10": 85.37, "15": 85.52}},
    },
    "training_fraction": {
        "source": "Fig. 4 (UCSD, 10-50% of training frames discarded); plotted only, no numbers printed",
        "values": {},
    },
}

#: Which of our figures the Street Scene "detection" numbers most likely correspond to.
STREET_SCENE_NOTE = (
    "The paper's Table 3 calls its Street Scene figures TBDR and RBDR (detection rates) and says it "
    "follows Ramachandra & Jones [53], whose criteria are summarised as the area under the detection-rate "
    "vs false-positives-per-frame curve for FPR 0 to 1 (RBDC, TBDC). No false-positive rate is given for "
    "a rate, so the published figures are most likely those areas (TBDC, RBDC in %); our reports give the "
    "areas and also the rates at 0.01 and 0.1 false positives per frame."
)


def published_for(dataset: str) -> dict[str, Any] | None:
    """The paper's published figures for ``dataset`` (with their source), or ``None`` if it has none."""
    entry = PUBLISHED.get(dataset)
    return None if entry is None else {"paper": PAPER, **entry}
