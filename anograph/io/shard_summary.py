"""What a feature shard holds, for people: its layout, its counts and its first rows (``anograph shards show``).

Why: a shard's ``feature`` column is one flat float vector per object; which columns belong
to which group (geometry, class, appearance, motion, ...) is only in the shard's metadata.
:func:`shard_summary_lines` prints that layout as column ranges, the object, frame and
source counts, and the first rows with every column named (from the extractors' own column
names where the metadata records them, else ``group[i]``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from anograph.errors import InputError
from anograph.io.shards import OBJECT_SOURCES, VideoFeatures, read_shard
from anograph.io.storage import Storage


def _recorded_columns(description: Any, width: int) -> list[str] | None:
    """A ``columns`` (or plain list of names) of ``width`` entries in a metadata description, if there is one."""
    if isinstance(description, list) and len(description) == width and all(isinstance(n, str) for n in description):
        return list(description)
    if isinstance(description, dict):
        columns = description.get("columns")
        if isinstance(columns, list) and len(columns) == width:
            return [str(name) for name in columns]
    return None


def column_names(video: VideoFeatures) -> list[str]:
    """A name for every column of the shard's ``feature`` vectors, in order."""
    metadata = video.metadata
    features = (metadata.extraction or {}).get("features") or {}
    names: list[str] = []
    for group, width in metadata.feature_layout.groups:
        recorded = None
        if group == "class" and len(metadata.class_names) == width:
            recorded = [f"class={name}" for name in metadata.class_names]
        elif group == "geometry":
            recorded = _recorded_columns(features.get("geometry"), width)
        else:
            recorded = _recorded_columns(features.get(group), width)
        names += recorded or [f"{group}[{index}]" for index in range(width)]
    return names


def layout_rows(video: VideoFeatures) -> list[tuple[str, int, int]]:
    """``(group, first column, width)`` of each group of the ``feature`` column."""
    rows, start = [], 0
    for group, width in video.metadata.feature_layout.groups:
        rows.append((group, start, width))
        start += width
    return rows


def shard_summary_lines(path: str | Path, rows: int = 5, columns_per_row: int = 12) -> Iterator[str]:
    """The lines ``anograph shards show`` prints for the shard file at ``path``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(path, "no such shard file")
    video = read_shard(Storage.open_existing(path.parent), path.name)
    metadata = video.metadata
    yield f"shard {path}"
    yield (f"video {metadata.video!r} ({metadata.source}): {metadata.n_frames} frames at "
           f"{metadata.fps or 'unknown'} fps, {metadata.width}x{metadata.height}, detector "
           f"{metadata.detector.get('name')}")
    sources = video.sources if video.sources is not None else np.zeros(video.n_objects, np.int8)
    by_source = ", ".join(f"{name} {int((sources == index).sum())}" for index, name in enumerate(OBJECT_SOURCES))
    frames_with_objects = len(np.unique(video.frames))
    yield (f"objects: {video.n_objects} in {frames_with_objects} of {metadata.n_frames} frames "
           f"(sources: {by_source})")
    if video.cell_speeds is not None:
        yield (f"cell speeds: {video.cell_speeds.shape[1]} cells a frame (frame rows after the objects), "
               f"fastest {float(video.cell_speeds.max(initial=0.0)):.4f} frame heights a frame")
    yield f"feature column: {metadata.feature_layout.width} floats per object, in groups:"
    for group, start, width in layout_rows(video):
        yield f"  {group:<18} columns {start:>4}-{start + width - 1:<4} width {width}"
    names = column_names(video)
    shown = min(rows, video.n_objects)
    yield f"first {shown} rows:"
    for row in range(shown):
        source = OBJECT_SOURCES[int(sources[row])]
        track = "" if video.track_ids is None else f" track {int(video.track_ids[row])}"
        yield (f"  frame {int(video.frames[row]) + 1} (1-based) {source}{track} class {int(video.class_ids[row])} "
               f"score {float(video.scores[row]):.3g} box {[round(float(v), 1) for v in video.boxes[row]]}")
        values = video.features[row]
        for first in range(0, len(names), columns_per_row):
            yield "    " + ", ".join(f"{name}={float(value):.4g}" for name, value
                                     in zip(names[first:first + columns_per_row],
                                            values[first:first + columns_per_row], strict=True))
