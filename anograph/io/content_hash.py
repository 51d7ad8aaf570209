"""Content hashes of videos: the identity a shard key is derived from.

A shard is keyed by what the video *is*, not where it lies: the SHA-256 of a video file's
bytes, or for a frame folder of its frame images in reading order (each file's name and
size, then its bytes, so moving bytes from one frame to the next changes the hash). Files
are streamed in 1 MiB blocks, so memory stays flat for any video size. Hashes are cached
per process by path, size and modification time, so a flow that asks twice reads once.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from anograph.errors import VideoReadError
from anograph.io.video import frame_files

BLOCK_BYTES = 1 << 20

_cache: dict[tuple, str] = {}
_cache_lock = threading.Lock()


def _stream_into(digest, path: Path) -> None:
    with path.open("rb") as handle:
        while block := handle.read(BLOCK_BYTES):
            digest.update(block)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of one file's bytes, streamed in 1 MiB blocks (weights, configs, detection files)."""
    digest = hashlib.sha256()
    _stream_into(digest, Path(path))
    return digest.hexdigest()


def video_content_hash(path: str | Path) -> str:
    """Hex SHA-256 of a video file's bytes, or of a frame folder's frame images.

    Raises :class:`anograph.errors.VideoReadError` naming the path when it does not exist
    or is unreadable, or a folder holds no frame images.
    """
    path = Path(path)
    try:
        if path.is_dir():
            files = frame_files(path)
            if not files:
                raise VideoReadError(path, "folder holds no frame images")
            stamps = tuple((file.name, file.stat().st_size, file.stat().st_mtime_ns) for file in files)
        else:
            stat = path.stat()
            files, stamps = [path], ((path.name, stat.st_size, stat.st_mtime_ns),)
        cache_key = (str(path.resolve()), stamps)
        with _cache_lock:
            if cache_key in _cache:
                return _cache[cache_key]
        digest = hashlib.sha256()
        if path.is_dir():
            for file, (name, size, _) in zip(files, stamps, strict=True):
                digest.update(f"{name}\0{size}\0".encode())
                _stream_into(digest, file)
        else:
            _stream_into(digest, path)
    except OSError as error:
        raise VideoReadError(path, f"cannot read the video to hash it ({error.strerror or error})") from error
    value = digest.hexdigest()
    with _cache_lock:
        _cache[cache_key] = value
    return value
