"""The feature-shard contract: one Parquet file per video.

A shard holds every detected object of one video, one row per object:

=========  ==============================  =============================================
column     type                            meaning
=========  ==============================  =============================================
video      string                          video name (file stem or frame-folder name)
frame      int32                           0-based frame index
box        fixed_size_list<float32>[4]     ``x1, y1, x2, y2`` in pixels
score      float32                         detector confidence
class_id   int32                           index into ``metadata.class_names``; -1 for an
                                           object of unknown class (a motion blob)
source     int8                            where the object came from, an index into
                                           :data:`OBJECT_SOURCES`: 0 ``detector``, 1
                                           ``motion_blob`` (a moving region the detector
                                           missed, see ``extraction.features.motion_boxes``)
track_id   int32                           the object's track within the video (ids from 0,
                                           ``extraction.features.tracks``); -1 when untracked
feature    fixed_size_binary[2 * width]    node feature vector, little-endian float16
cells      binary (nullable)               a *frame row*'s cell speeds (see below), little-endian
                                           float16; null in every object row
=========  ==============================  =============================================

Format versions: 3 (written now) added frame rows and ``cells``; 2 added ``source`` and
``track_id``. Version 1 shards, which lack them, still read: every object is then a
``detector`` object with track id -1. Shards of versions 1 and 2 read without cell speeds.

Object rows come first, sorted by ``frame``. Frames without objects have no object rows;
``n_frames`` in the metadata says how many frames the video has, so empty frames are not lost.
Where the extraction read cell speeds (:mod:`anograph.extraction.features.cell_motion`), one
*frame row* per frame follows the object rows, in frame order: ``source`` is
:data:`FRAME_ROW_SOURCE` (-1), ``cells`` holds the moving speed of each cell of the frame's grid
(``metadata.extraction.features.cell_motion`` gives the grid), every other column is zero
(``class_id`` and ``track_id`` -1). Readers take them apart from the objects
(:attr:`VideoFeatures.cell_speeds`).

The Parquet key-value metadata entry ``anograph`` holds :class:`ShardMetadata` as JSON:
format version, video facts (frames, fps, size, source, content SHA-256, the camera that filmed it where a
dataset pools several: ``""`` otherwise and in shards written before it), the detector's name, settings
and weights hash, the feature layout, and extraction throughput. It never holds
credentials.

Layout choices: float16 rows as fixed-size binary are fast to read and half the size of
float32, and dictionary encoding is off for the feature column, since it slows reads down.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from anograph.errors import InputError
from anograph.extraction.features.layout import FeatureLayout
from anograph.io.storage import Storage

SHARD_FORMAT_VERSION = 3
READABLE_FORMAT_VERSIONS = (1, 2, 3)
METADATA_KEY = b"anograph"
OBJECT_SOURCES = ("detector", "motion_blob")
NO_TRACK = -1
#: The ``source`` of a frame row (cell speeds), which is no object.
FRAME_ROW_SOURCE = -1


@dataclass
class ShardMetadata:
    """Everything about a shard that is not a per-object row."""

    video: str
    n_frames: int
    fps: float | None
    width: int
    height: int
    source: str
    detector: dict[str, Any]
    class_names: list[str]
    feature_layout: FeatureLayout
    extraction: dict[str, Any] = field(default_factory=dict)
    format_version: int = SHARD_FORMAT_VERSION
    content_sha256: str | None = None  # the video's content hash (anograph.io.content_hash), if known
    camera: str = ""  # the camera that filmed it (anograph.datasets.base.VideoRef.camera); "" for one camera

    def to_json(self) -> str:
        value = asdict(self)
        value["feature_layout"] = self.feature_layout.to_json()
        return json.dumps(value, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ShardMetadata:
        value = json.loads(text)
        value["feature_layout"] = FeatureLayout.from_json(value["feature_layout"])
        return cls(**value)


@dataclass
class VideoFeatures:
    """One video's objects in memory: the content of a shard.

    Attributes
    ----------
    frames:
        ``(n,)`` int32 frame index of each object, non-decreasing.
    boxes, scores, class_ids:
        As in :class:`anograph.extraction.detectors.base.Detections`, concatenated over frames.
    features:
        ``(n, metadata.feature_layout.width)`` node features (float16 on disk).
    sources:
        ``(n,)`` int8 index into :data:`OBJECT_SOURCES`; ``None`` means all ``detector``.
    track_ids:
        ``(n,)`` int32 track id, -1 when untracked; ``None`` means all -1.
    cell_speeds:
        ``(n_frames, n_cells)`` float32 moving speed of each cell of each frame's grid, in frame
        heights per frame (:mod:`anograph.extraction.features.cell_motion`), or ``None`` where the
        extraction read none.
    """

    metadata: ShardMetadata
    frames: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    features: np.ndarray
    sources: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    cell_speeds: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.frames)
        if self.cell_speeds is not None:
            self.cell_speeds = np.asarray(self.cell_speeds, np.float32)
            if self.cell_speeds.ndim != 2 or len(self.cell_speeds) != self.metadata.n_frames:
                raise ValueError(f"cell_speeds have shape {self.cell_speeds.shape}, expected "
                                 f"({self.metadata.n_frames}, n_cells)")
        self.sources = np.zeros(n, np.int8) if self.sources is None else np.asarray(self.sources, np.int8)
        self.track_ids = (
            np.full(n, NO_TRACK, np.int32) if self.track_ids is None else np.asarray(self.track_ids, np.int32)
        )
        if self.sources.shape != (n,) or self.track_ids.shape != (n,):
            raise ValueError(f"sources {self.sources.shape} and track_ids {self.track_ids.shape} must be ({n},)")
        if n and (self.sources.min() < 0 or self.sources.max() >= len(OBJECT_SOURCES)):
            raise ValueError(f"sources must index {OBJECT_SOURCES}")
        width = self.metadata.feature_layout.width
        if self.features.shape != (n, width):
            raise ValueError(f"features have shape {self.features.shape}, expected ({n}, {width})")
        if n and np.any(np.diff(self.frames) < 0):
            raise ValueError("objects must be sorted by frame")

    @property
    def n_objects(self) -> int:
        return int(len(self.frames))

    def frame_offsets(self) -> np.ndarray:
        """``(n_frames + 1,)`` offsets: objects of frame t are rows ``offsets[t]:offsets[t+1]``."""
        counts = np.bincount(self.frames, minlength=self.metadata.n_frames)
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


SCHEMA_FIELDS = [
    pa.field("video", pa.string()),
    pa.field("frame", pa.int32()),
    pa.field("box", pa.list_(pa.float32(), 4)),
    pa.field("score", pa.float32()),
    pa.field("class_id", pa.int32()),
    pa.field("source", pa.int8()),
    pa.field("track_id", pa.int32()),
]


def to_table(video: VideoFeatures) -> pa.Table:
    """Convert to an Arrow table with the shard schema and metadata (object rows, then any frame rows)."""
    n = video.n_objects
    width = video.metadata.feature_layout.width
    frames, boxes, scores = video.frames.astype(np.int32), np.asarray(video.boxes, np.float32), video.scores
    class_ids, sources, track_ids = video.class_ids, np.asarray(video.sources), np.asarray(video.track_ids)
    half = np.ascontiguousarray(video.features, dtype="<f2")
    cells: list[bytes | None] = [None] * n
    if video.cell_speeds is not None:
        n_frames = len(video.cell_speeds)
        frames = np.concatenate([frames, np.arange(n_frames, dtype=np.int32)])
        boxes = np.concatenate([boxes.reshape(-1, 4), np.zeros((n_frames, 4), np.float32)])
        scores = np.concatenate([scores, np.zeros(n_frames, np.float32)])
        class_ids = np.concatenate([class_ids, np.full(n_frames, -1, np.int32)])
        sources = np.concatenate([sources, np.full(n_frames, FRAME_ROW_SOURCE, np.int8)])
        track_ids = np.concatenate([track_ids, np.full(n_frames, NO_TRACK, np.int32)])
        half = np.concatenate([half.reshape(-1, width), np.zeros((n_frames, width), "<f2")])
        cells += [row.tobytes() for row in np.ascontiguousarray(video.cell_speeds, dtype="<f2")]
    rows = len(frames)
    feature = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(2 * width), rows, [None, pa.py_buffer(half.tobytes())]
    )
    schema = pa.schema(
        [*SCHEMA_FIELDS, pa.field("feature", pa.binary(2 * width)), pa.field("cells", pa.binary())],
        metadata={METADATA_KEY: video.metadata.to_json().encode()},
    )
    columns = [
        pa.array(np.full(rows, video.metadata.video, dtype=object), pa.string()),
        pa.array(frames),
        pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(boxes, np.float32).ravel()), 4),
        pa.array(np.asarray(scores, np.float32)),
        pa.array(np.asarray(class_ids, np.int32)),
        pa.array(np.asarray(sources, np.int8)),
        pa.array(np.asarray(track_ids, np.int32)),
        feature,
        pa.array(cells, pa.binary()),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def from_table(table: pa.Table, source: str = "<table>") -> VideoFeatures:
    """Inverse of :func:`to_table`; ``source`` names the shard in errors."""
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise InputError(source, "not an anograph feature shard (no 'anograph' metadata)")
    metadata = ShardMetadata.from_json(raw.decode())
    if metadata.format_version not in READABLE_FORMAT_VERSIONS:
        raise InputError(
            source, f"shard format {metadata.format_version} is not one of {READABLE_FORMAT_VERSIONS}"
        )
    width = metadata.feature_layout.width
    names = set(table.column_names)
    cell_speeds = None
    if "source" in names:
        n = int(pc.sum(pc.not_equal(table.column("source"), FRAME_ROW_SOURCE)).as_py() or 0)
        if n < table.num_rows:  # frame rows follow the objects
            if pc.any(pc.equal(table.column("source").slice(0, n), FRAME_ROW_SOURCE)).as_py():
                raise InputError(source, "frame rows of the shard do not all follow its object rows")
            cells = table.column("cells").slice(n).to_pylist()
            if any(row is None for row in cells):
                raise InputError(source, "a frame row of the shard holds no cell speeds")
            cell_speeds = np.stack([np.frombuffer(row, dtype="<f2") for row in cells]).astype(np.float32)
            table = table.slice(0, n)
    n = table.num_rows
    chunks = table.column("feature").chunks
    feature_column = chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)  # no copy of one chunk
    if n:
        buffer = feature_column.buffers()[1]
        offset = feature_column.offset * 2 * width
        features = np.frombuffer(buffer, dtype="<f2", count=n * width, offset=offset).reshape(n, width)
    else:
        features = np.zeros((0, width), np.float16)
    boxes = table.column("box").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return VideoFeatures(
        metadata=metadata,
        frames=table.column("frame").to_numpy().astype(np.int32),
        boxes=boxes.reshape(n, 4).astype(np.float32),
        scores=table.column("score").to_numpy().astype(np.float32),
        class_ids=table.column("class_id").to_numpy().astype(np.int32),
        features=features,
        sources=table.column("source").to_numpy().astype(np.int8) if "source" in names else None,
        track_ids=table.column("track_id").to_numpy().astype(np.int32) if "track_id" in names else None,
        cell_speeds=cell_speeds,
    )


def write_shard(storage: Storage, key: str, video: VideoFeatures) -> None:
    """Write ``video`` as Parquet at ``key``, atomically."""
    sink = io.BytesIO()
    pq.write_table(
        to_table(video),
        sink,
        compression="zstd",
        use_dictionary=["video"],
        row_group_size=64 * 1024,
    )
    storage.write_bytes(key, sink.getvalue())


def read_shard(storage: Storage, key: str) -> VideoFeatures:
    """Read the shard at ``key``; a file that is not a shard raises :class:`InputError`."""
    # An object store's object comes in one request (not one per column); a local file is read in place.
    source = io.BytesIO(storage.read_bytes(key)) if storage.is_object_store else storage.open_input(key)
    try:
        with source:
            table = pq.read_table(source)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"{storage.uri}/{key}", f"not a readable Parquet shard ({error})") from error
    return from_table(table, source=f"{storage.uri}/{key}")


def read_metadata(storage: Storage, key: str) -> ShardMetadata:
    """Read only the metadata of the shard at ``key``."""
    try:
        with storage.open_input(key) as source:  # the footer only, not the rows
            schema = pq.read_schema(source)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"{storage.uri}/{key}", f"not a readable Parquet shard ({error})") from error
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise InputError(f"{storage.uri}/{key}", "not an anograph feature shard")
    return ShardMetadata.from_json(raw.decode())


def check_shard(storage: Storage, key: str, content_sha256: str | None = None) -> str | None:
    """Why the object at ``key`` is not a complete shard (of that video content), or ``None`` if it is.

    The completeness rule, which extraction uses to decide whether a video is done:

    1. an object exists at the final key (writes go to a temporary key first, see
       :class:`anograph.io.storage.Storage`, so a final key only ever holds a whole upload);
    2. its Parquet footer parses: Parquet writes the footer (schema, row groups, our
       metadata) last and ends the file with its length and the magic ``PAR1``, so a
       truncated or partial object has none;
    3. its ``anograph`` metadata parses with a readable format version;
    4. its ``content_sha256`` equals ``content_sha256`` when one is given.

    Only the footer is read, never the feature rows.
    """
    if not storage.exists(key):
        return "no object at the key"
    try:
        with storage.open_input(key) as source:
            footer = pq.ParquetFile(source).metadata
    except (pa.ArrowInvalid, OSError) as error:
        return f"not a readable Parquet file ({error})"
    raw = (footer.metadata or {}).get(METADATA_KEY)
    if raw is None:
        return "no 'anograph' metadata"
    try:
        metadata = ShardMetadata.from_json(raw.decode())
    except (ValueError, TypeError, KeyError) as error:
        return f"unreadable 'anograph' metadata ({error})"
    if metadata.format_version not in READABLE_FORMAT_VERSIONS:
        return f"shard format {metadata.format_version} is not one of {READABLE_FORMAT_VERSIONS}"
    if content_sha256 is not None and metadata.content_sha256 != content_sha256:
        return f"made from other video content ({metadata.content_sha256})"
    return None
