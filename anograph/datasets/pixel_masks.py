"""Anomalous regions and tracks from per-frame pixel masks.

Several benchmarks (UCSD Ped1/Ped2, Street Scene, Avenue, ShanghaiTech) localise anomalies
with one binary mask per frame rather than with boxes. Region- and track-based criteria
(RBDC, TBDC; :mod:`anograph.evaluation.detection_metrics`) need boxes with track ids, so this
module turns a sequence of masks into the region array of
:attr:`anograph.datasets.base.VideoRef.ground_truth_regions`:

* **regions**: every 8-connected component of a mask's set pixels is one region, kept
  whatever its size (no pixel-count floor, so no region is dropped by a tuning choice). Its
  box is in pixel-edge coordinates: ``x1, y1`` the top-left pixel's corner, ``x2 = x1 + width``,
  ``y2 = y1 + height``, so a one-pixel region has area 1 under
  :func:`anograph.graph.build.paired_iou`;
* **tracks**: a region continues a track when it shares at least one pixel with a region of
  the previous frame. When it overlaps regions of several tracks, it joins the track with
  which it shares the most pixels, ties broken by the lower track id; a region overlapping
  nothing in the previous frame (including after a frame without anomaly) starts a new
  track. Track ids count from 0 in order of first appearance (frame, then the component
  order of :func:`cv2.connectedComponentsWithStats`, which scans rows top to bottom).

Masks are 8-bit images with 0 for normal and 255 for anomalous pixels, as the benchmarks ship
them. A pixel is set when its grey value exceeds ``threshold``, by default
:data:`MASK_THRESHOLD` (half-way), so that the ringing of lossily (JPEG) stored masks does not
add pixels; pass ``threshold=0`` for masks stored as 0/1.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from anograph.datasets.base import regions_array
from anograph.errors import InputError
from anograph.io.video import IMAGE_EXTENSIONS, frame_files

#: Connectivity of a region: pixels touching by an edge or a corner belong together.
MASK_CONNECTIVITY = 8
#: Grey value a set pixel exceeds: half-way between 0 and 255.
MASK_THRESHOLD = 127


def mask_files(folder: str | Path) -> list[Path]:
    """The mask images of one video, in frame order (sorted by name, as frame folders are).

    Raises
    ------
    InputError
        When ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "mask folder not found")
    return frame_files(folder)


def read_masks(files: Iterable[Path], threshold: int = MASK_THRESHOLD) -> Iterator[np.ndarray]:
    """Boolean masks (``True`` where a pixel's grey value exceeds ``threshold``), one per file.

    Raises
    ------
    InputError
        Naming the file, when it cannot be read as an image or its size differs from the
        first mask's.
    """
    shape: tuple[int, ...] | None = None
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise InputError(path, f"cannot read the mask image (expected one of {', '.join(IMAGE_EXTENSIONS)})")
        if shape is None:
            shape = image.shape
        elif image.shape != shape:
            raise InputError(path, f"mask is {image.shape[1]}x{image.shape[0]}, the first mask {shape[1]}x{shape[0]}")
        yield image > threshold


def regions_from_masks(masks: Iterable[np.ndarray]) -> np.ndarray:
    """Regions and tracks of a sequence of boolean masks (see the module docstring for the rules).

    Parameters
    ----------
    masks:
        One 2-D boolean mask per frame, in frame order (frame 0 first).

    Returns
    -------
    numpy.ndarray
        Float64 ``(n_regions, 6)`` rows ``frame, track_id, x1, y1, x2, y2``
        (:data:`anograph.datasets.base.REGION_COLUMNS`), sorted by frame then track.
    """
    rows: list[tuple[float, float, float, float, float, float]] = []
    previous_labels: np.ndarray | None = None
    previous_tracks = np.zeros(1, np.int64)  # component label -> track id (label 0 is background)
    n_tracks = 0
    for frame, mask in enumerate(masks):
        n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(
            np.asarray(mask, dtype=np.uint8), connectivity=MASK_CONNECTIVITY
        )
        tracks = np.full(n_labels, -1, np.int64)
        if previous_labels is not None and n_labels > 1:
            tracks[1:] = _continued_tracks(previous_labels, previous_tracks, labels, n_labels)
        for label in range(1, n_labels):
            if tracks[label] < 0:
                tracks[label] = n_tracks
                n_tracks += 1
            left, top, width, height = (int(value) for value in stats[label, :4])
            rows.append((frame, int(tracks[label]), left, top, left + width, top + height))
        previous_labels, previous_tracks = labels, tracks
    return regions_array(rows)


def _continued_tracks(
    previous_labels: np.ndarray, previous_tracks: np.ndarray, labels: np.ndarray, n_labels: int
) -> np.ndarray:
    """For components ``1 .. n_labels - 1``: the previous frame's track each continues, or -1."""
    if previous_labels.shape != labels.shape:
        return np.full(n_labels - 1, -1, np.int64)
    both = (previous_labels > 0) & (labels > 0)
    if not both.any():
        return np.full(n_labels - 1, -1, np.int64)
    # Shared pixels per (current component, previous track) pair.
    pairs, shared = np.unique(
        np.stack([labels[both], previous_tracks[previous_labels[both]]]), axis=1, return_counts=True
    )
    continued = np.full(n_labels - 1, -1, np.int64)
    best_shared = np.zeros(n_labels - 1, np.int64)
    # np.unique sorts pairs by component then track, so a strict ">" keeps the lower track on ties.
    for (component, track), count in zip(pairs.T, shared, strict=True):
        if count > best_shared[component - 1]:
            best_shared[component - 1] = count
            continued[component - 1] = track
    return continued


def read_mask_regions(
    folder: str | Path,
    n_frames: int | None = None,
    frame_size: tuple[int, int] | None = None,
    threshold: int = MASK_THRESHOLD,
) -> np.ndarray:
    """Regions and tracks of one video's mask folder.

    Parameters
    ----------
    folder:
        Folder of one mask image per frame (any of
        :data:`anograph.io.video.IMAGE_EXTENSIONS`), sorted by name in frame order.
    n_frames:
        The video's frame count; ``None`` (default) skips the check.
    frame_size:
        The video's ``(width, height)``; ``None`` (default) skips the check.
    threshold:
        A pixel is set when its grey value exceeds this (default :data:`MASK_THRESHOLD`).

    Returns
    -------
    numpy.ndarray
        As :func:`regions_from_masks`.

    Raises
    ------
    InputError
        Naming the folder when it holds another number of masks than ``n_frames`` or masks of
        another size than ``frame_size``; naming the file when a mask cannot be read.
    """
    folder = Path(folder)
    files = mask_files(folder)
    if n_frames is not None and len(files) != n_frames:
        raise InputError(folder, f"holds {len(files)} masks but its video has {n_frames} frames")
    masks = read_masks(files, threshold)
    if frame_size is not None:
        masks = _checked_size(masks, folder, frame_size)
    return regions_from_masks(masks)


def _checked_size(masks: Iterator[np.ndarray], folder: Path, frame_size: tuple[int, int]) -> Iterator[np.ndarray]:
    """Pass masks through, failing on the first whose size is not the video's (``read_masks`` checks the rest)."""
    width, height = frame_size
    for index, mask in enumerate(masks):
        if index == 0 and mask.shape != (height, width):
            raise InputError(
                folder, f"masks are {mask.shape[1]}x{mask.shape[0]} but the video's frames are {width}x{height}"
            )
        yield mask
