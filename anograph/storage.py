"""A storage root for shards, models and reports, addressed by relative keys.

Everything the pipeline persists lives under one root: a local folder (the default) or,
through pyarrow's filesystems, any URI pyarrow understands (``s3://bucket/prefix``).
Keys are ``/``-separated relative paths; a key that would escape the root is refused.
Writes are atomic: the bytes go to a temporary key that is then renamed, so a crash
never leaves a partial object that later reads as complete.
"""

from __future__ import annotations

import posixpath
import uuid
from pathlib import Path

import pyarrow.fs as pafs

from anograph.errors import InputError


class Storage:
    """Read and write objects under a root folder or URI.

    Parameters
    ----------
    root:
        A local path (created if missing) or a URI such as ``file:///data/x``.
    """

    def __init__(self, root: str | Path) -> None:
        root = str(root)
        if "://" in root:
            self.filesystem, base = pafs.FileSystem.from_uri(root)
        else:
            self.filesystem = pafs.LocalFileSystem()
            base = str(Path(root).expanduser().resolve())
        self.base = base.rstrip("/") or "/"
        self.uri = root
        self.filesystem.create_dir(self.base, recursive=True)

    def __repr__(self) -> str:
        return f"Storage({self.uri!r})"

    def path(self, key: str) -> str:
        """Absolute filesystem path of ``key``; refuses keys that escape the root."""
        if not key or key.startswith("/") or "\\" in key:
            raise InputError(key, "storage keys must be non-empty relative '/'-separated paths")
        normal = posixpath.normpath(key)
        if normal == ".." or normal.startswith("../") or normal == ".":
            raise InputError(key, f"storage key escapes the storage root {self.uri}")
        return f"{self.base}/{normal}"

    def local_path(self, key: str) -> Path | None:
        """The key as a local ``Path`` when the root is local, else ``None``."""
        return Path(self.path(key)) if isinstance(self.filesystem, pafs.LocalFileSystem) else None

    def exists(self, key: str) -> bool:
        return self.filesystem.get_file_info(self.path(key)).type == pafs.FileType.File

    def read_bytes(self, key: str) -> bytes:
        if not self.exists(key):
            raise InputError(f"{self.uri}/{key}", "no such object in storage")
        with self.filesystem.open_input_stream(self.path(key)) as stream:
            return stream.read()

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` atomically (temporary key, then rename)."""
        target = self.path(key)
        self.filesystem.create_dir(posixpath.dirname(target), recursive=True)
        temporary = f"{target}.tmp-{uuid.uuid4().hex}"
        try:
            with self.filesystem.open_output_stream(temporary) as stream:
                stream.write(data)
            self.filesystem.move(temporary, target)
        finally:
            if self.filesystem.get_file_info(temporary).type == pafs.FileType.File:
                self.filesystem.delete_file(temporary)

    def list(self, prefix: str = "") -> list[str]:
        """Keys of the finished objects under ``prefix`` (temporary keys excluded), sorted."""
        folder = self.path(prefix) if prefix else self.base
        selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
        keys = [
            posixpath.relpath(info.path, self.base)
            for info in self.filesystem.get_file_info(selector)
            if info.type == pafs.FileType.File and ".tmp-" not in posixpath.basename(info.path)
        ]
        return sorted(keys)
