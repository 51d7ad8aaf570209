"""Writing the report: ``report.json``, ``report.md`` and the plots into a folder, then storage.

:func:`write_report` draws the plots, records their file names under ``images`` and writes
the JSON (no NaN: undefined values are ``null``) and the Markdown; :func:`store_report`
copies the written files under the storage root, beside the shards and the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from anograph.errors import InputError
from anograph.evaluation.metrics import fill_empty_frames, smooth_scores
from anograph.evaluation.report.build import FrameScores, json_safe
from anograph.evaluation.report.markdown import report_markdown
from anograph.evaluation.report.plots import plot_embedding, plot_roc, plot_video_scores
from anograph.io.storage import Storage


def _image_name(video: str) -> str:
    """File name of a video's score plot: characters outside ``[A-Za-z0-9._-]`` become ``_``."""
    return "scores_" + re.sub(r"[^A-Za-z0-9._-]", "_", video) + ".png"


def write_report(
    out_dir: str | Path,
    report: Mapping[str, Any],
    frame_scores: FrameScores,
    labels: Mapping[str, np.ndarray],
    default_scorer: str,
    embedding: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``report.json``, ``report.md``, ``roc.png`` and one ``scores_<video>.png`` per test video.

    Parameters
    ----------
    out_dir:
        Folder to write into (created if missing; files of the same names are replaced).
    report:
        The dictionary from :func:`build_report` (not modified; the written JSON adds
        ``images``).
    frame_scores:
        Scorer -> video -> per-frame scores, as given to :func:`build_report`.
    labels:
        Video -> boolean per-frame labels.
    default_scorer:
        Scorer whose scores are plotted per video.
    embedding:
        Optional embedding map: ``{"coordinates": (k, 2), "scores": {scorer: (k,)}}``
        (see :func:`anograph.evaluation.ablations.embedding_map`); drawn as ``embedding.png``, one
        panel per scorer.

    Returns
    -------
    dict
        ``"json"``, ``"markdown"``, ``"roc"``, ``"scores_<video>"`` and, with an embedding
        map, ``"embedding"`` -> written path.
    """
    if default_scorer not in frame_scores:
        raise InputError(
            None, f"default scorer {default_scorer!r} is not among the scorers {sorted(frame_scores)}"
        )
    if default_scorer != report["default_scorer"]:
        raise InputError(
            None, f"default scorer {default_scorer!r} differs from the report's {report['default_scorer']!r}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = dict(report)
    paths: dict[str, Path] = {"roc": out_dir / "roc.png"}
    plot_roc(paths["roc"], frame_scores, labels, report)

    raw = fill_empty_frames(frame_scores[default_scorer])
    smoothed = smooth_scores(raw, report["smoothing_sigma"])
    images: dict[str, str] = {}
    for video, label in labels.items():
        image = _image_name(video)
        paths[f"scores_{video}"] = out_dir / image
        plot_video_scores(out_dir / image, video, raw[video], smoothed[video], np.asarray(label), report)
        images[video] = image
    report["images"] = {"roc": paths["roc"].name, "scores": images}
    if embedding is not None:
        paths["embedding"] = out_dir / "embedding.png"
        plot_embedding(paths["embedding"], embedding, report)
        report["images"]["embedding"] = paths["embedding"].name

    paths["json"] = out_dir / "report.json"
    paths["json"].write_text(
        json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    paths["markdown"] = out_dir / "report.md"
    paths["markdown"].write_text(report_markdown(report), encoding="utf-8")
    return paths


def store_report(paths: Mapping[str, Path], storage: Storage, prefix: str) -> list[str]:
    """Copy the files :func:`write_report` wrote to ``prefix/<file name>`` under the storage root.

    The report then lives beside the shards and the model it was made from (on S3 too);
    returns the keys written.
    """
    keys = []
    for path in sorted(set(paths.values())):
        key = f"{prefix.rstrip('/')}/{path.name}"
        storage.write_bytes(key, path.read_bytes())
        keys.append(key)
    return keys
