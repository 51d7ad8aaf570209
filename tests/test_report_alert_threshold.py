"""The report's alert-threshold section: the calibration's threshold counted on the test labels."""

import numpy as np

from anograph.evaluation.report import build_report
from anograph.evaluation.report.alert_threshold import threshold_markdown, threshold_on_test

THRESHOLD = {"value": 0.5, "quantile": 0.99, "scorer": "attributes", "source": "frame_calibration"}


def test_counts_follow_the_threshold_and_the_labels():
    scores = {"a": np.array([0.1, 0.9, np.nan, 0.7, 0.2]), "b": np.array([0.6, 0.1, 0.1])}
    labels = {"a": np.array([0, 1, 1, 0, 1], bool), "b": np.array([0, 0, 1], bool)}
    summary = threshold_on_test(THRESHOLD, scores, labels)
    assert summary["frames_flagged"] == 3  # 0.9, 0.7, 0.6; NaN is never over
    assert summary["anomalous_frames_flagged"] == 1 and summary["normal_frames_flagged"] == 2
    assert summary["anomalous_runs"] == 3 and summary["anomalous_runs_flagged"] == 1
    assert summary["test_frames"] == 8 and summary["test_anomalous_frames"] == 4
    assert threshold_on_test(None, scores, labels) is None
    text = "\n".join(threshold_markdown(summary))
    assert "0.99 quantile" in text and "| 3 of 8 | 1 of 4 | 2 of 4 | 1 of 3 |" in text


def test_the_report_carries_the_threshold_of_its_scorer():
    rng = np.random.default_rng(0)
    labels = {"v": np.r_[np.zeros(30, bool), np.ones(20, bool)]}
    frames = {"attributes": {"v": np.r_[rng.uniform(0, 0.4, 30), rng.uniform(0.6, 1.0, 20)]}}
    report = build_report(frames, labels, dataset="d", detector="motion", default_scorer="attributes",
                          default_scorer_reason="test", alert_threshold=THRESHOLD)
    assert report["alert_threshold"]["anomalous_frames_flagged"] == 20
    assert report["alert_threshold"]["normal_frames_flagged"] == 0


def test_training_videos_are_listed_most_over_first_and_the_odd_one_is_marked():
    videos = {f"train{index:02d}": [1, 100] for index in range(12)}
    videos["train05"] = [40, 100]
    summary = threshold_on_test({**THRESHOLD, "training_videos": videos}, {}, {})
    text = "\n".join(threshold_markdown(summary))
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows[0] == "| `train05` **unlike the others** | 40 | 100 | 40.0% |"
    assert len(rows) == 10 and sum("unlike the others" in row for row in rows) == 1
    assert "2 more, each at or under 1.0%." in text
    assert "Training videos" not in "\n".join(threshold_markdown(threshold_on_test(THRESHOLD, {}, {})))
