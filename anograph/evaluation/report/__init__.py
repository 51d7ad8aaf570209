"""The evaluation report: metrics of every scorer, as JSON, Markdown and plots.

:func:`build_report` computes the numbers (:func:`compute_metrics` per scorer) and
:func:`write_report` writes them to a folder; :func:`store_report` copies that folder's
files under the storage root. The package is split by concern so each part can be used
and tested alone:

``build``
    The numbers: :func:`compute_metrics`, :func:`build_report`, :func:`region_metrics`,
    :func:`ablation_metrics`, :func:`software_versions`, :data:`REPORT_SCHEMA_VERSION`.
``markdown``
    ``report.md`` from the report dictionary (:func:`report_markdown`).
``plots``
    The PNG figures (matplotlib, Agg canvas).
``files``
    :func:`write_report` and :func:`store_report`.

Files written by :func:`write_report`:

``report.json``
    Machine-readable results (schema below); never contains NaN (undefined values are
    ``null``).
``report.md``
    For people: headline table, scorer comparison, tables in the paper's layouts, per-video
    results, skipped videos, stage timings, the choices made, and the plots embedded.
``roc.png``
    Pooled ROC curve of every scorer (unsmoothed; the default scorer smoothed as well).
``embedding.png``
    When an embedding map is given: t-SNE of test-object embeddings coloured by score (Fig. 3).
``scores_<video>.png``
    One per test video: the default scorer's frame scores (raw and smoothed) over time,
    anomalous frames shaded. Characters other than letters, digits, ``.``, ``_`` and
    ``-`` in the video name become ``_``.

report.json schema (``schema_version`` 2, :data:`REPORT_SCHEMA_VERSION`)::

    {
      "schema_version": 2,
      "created_at": str,                         # UTC, ISO 8601 to the second
      "dataset": str,                            # e.g. "ucsd-ped2"
      "detector": str,                           # e.g. "yolox-nano"
      "default_scorer": str,                     # the scorer the headline numbers use
      "default_scorer_reason": str,              # why it is the default
      "frame_auc_micro": float | null,           # default scorer, unsmoothed, pooled frames
      "frame_auc_macro": float | null,           # default scorer, unsmoothed, mean per video
      "frame_auc_micro_smoothed": float | null,  # same, scores smoothed with smoothing_sigma
      "frame_auc_macro_smoothed": float | null,
      "equal_error_rate": float | null,          # default scorer, unsmoothed, pooled
      "smoothing_sigma": float,                  # Gaussian sigma in frames (0: none)
      "macro_convention": "pad" | "skip",        # see anograph.evaluation.metrics
      "empty_frames": "lowest score over all videos",   # how frames without objects are scored
      "n_test_videos": int,
      "n_test_frames": int,
      "n_anomalous_frames": int,
      "n_single_class_videos": int,              # videos all normal or all anomalous
      "stage_seconds": {"<stage>": float},       # wall-clock seconds per pipeline stage
      "scorers": {
        "<scorer>": {"frame_auc_micro", "frame_auc_macro", "frame_auc_micro_smoothed",
                     "frame_auc_macro_smoothed", "equal_error_rate"}    # each float | null
      },
      "per_video": {                             # default scorer, unsmoothed
        "<video>": {
          "frames": int,
          "anomalous_frames": int,
          "auc": float | null,                   # the video's own AUC; null if single-class
          "auc_padded": float | null             # with the "pad" convention's two extra frames
        }
      },
      "config": {...},                           # whatever settings the caller passed
      "skipped_videos": [                        # unreadable videos left out (--skip-bad-videos)
        {"split": str, "video": str, "path": str, "reason": str}
      ],
      "versions": {"anograph": str, "python": str, "numpy": str | null, ...},  # null: not installed
      "youden": {"<scorer>": {"threshold", "true_negatives", "false_negatives", "true_positives",
                              "false_positives", "accuracy", "true_positive_rate",
                              "false_positive_rate"}},
      "nlilo_accuracy": null, "nlilo_accuracy_note": str,   # why it is not computed
      "region_metrics": {"available": false, "reason": str}  # or, with region ground truth:
                        {"available": true, "beta": float, "alpha": float, "n_frames": int,
                         "n_regions": int, "n_tracks": int,
                         "scorers": {"<scorer>": {"rbdc", "tbdc", "rbdr_at_0.01", "rbdr_at_0.1",
                                                  "tbdr_at_0.01", "tbdr_at_0.1"}}},
      "ablations": {"<ablation>": {"note": str, "details": {...},
                                   "variants": {"<variant>": {"<scorer>": {
                                       "frame_auc_micro", "frame_auc_macro",
                                       "frame_auc_micro_smoothed"}}}}},
      "published": {"paper", "source", "metrics": {...}, "label": "published, not our run",
                    "note"?} | null,             # note: Street Scene only
      "images": {"roc": "roc.png", "scores": {"<video>": "scores_<video>.png"},
                 "embedding"?: "embedding.png"}   # added by write_report
    }

AUC and EER values are ``null`` where undefined (a single class of frames). The RBDC /
TBDC areas and rates are fractions in ``[0, 1]``; published figures are kept as printed (%).
"""

from anograph.evaluation.report.build import (
    DETECTION_RATE_FPRS,
    EMPTY_FRAMES_RULE,
    REPORT_SCHEMA_VERSION,
    FrameScores,
    ablation_metrics,
    build_report,
    compute_metrics,
    json_safe,
    object_regions,
    region_metrics,
    software_versions,
)
from anograph.evaluation.report.files import store_report, write_report
from anograph.evaluation.report.headline import HEADLINE_KEYS, headline_metrics
from anograph.evaluation.report.markdown import report_markdown

__all__ = [
    "HEADLINE_KEYS",
    "headline_metrics",
    "DETECTION_RATE_FPRS",
    "EMPTY_FRAMES_RULE",
    "REPORT_SCHEMA_VERSION",
    "FrameScores",
    "ablation_metrics",
    "build_report",
    "compute_metrics",
    "json_safe",
    "object_regions",
    "region_metrics",
    "software_versions",
    "report_markdown",
    "store_report",
    "write_report",
]
