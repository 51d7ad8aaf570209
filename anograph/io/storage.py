"""A storage root for shards, models and reports, addressed by relative keys.

Everything the pipeline persists lives under one root, given as a URI:

- a plain local path or ``file:///data/x`` (the default: a local folder, created if missing;
  ``Storage(root, create=False)``, for commands that only read, refuses a root that does not
  exist instead, so a mistyped path is an error rather than a new empty store);
- ``s3://bucket/prefix`` for S3 or an S3-compatible server (pyarrow's S3 filesystem). The
  endpoint of an S3-compatible server comes from the root's query
  (``s3://bucket/prefix?endpoint_override=http://127.0.0.1:8333``, see :func:`with_endpoint`),
  else from ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, else AWS itself. Credentials
  come only from the standard AWS chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
  ``AWS_SESSION_TOKEN``, ``~/.aws/credentials`` and ``~/.aws/config`` with ``AWS_PROFILE``,
  instance metadata), read by the AWS SDK inside pyarrow: they never pass through anograph,
  so they cannot end up in logs, reports or shard metadata. A root or an endpoint that carries
  credentials itself (``s3://KEY:SECRET@bucket``, ``endpoint_override=http://KEY:SECRET@host``)
  is refused without repeating them, because the root is logged and recorded;
- any other URI pyarrow understands (``gs://``, ``hdfs://``), as pyarrow reads it.

Keys are ``/``-separated relative paths; a key that would escape the root is refused, and on
a local root so is a key whose real path (symbolic links resolved) lies outside the root.
Writes are atomic: the bytes go to a temporary key ``<key>.tmp-<uuid>`` that is then renamed.
Locally that is a filesystem rename. On S3 a rename is a server-side copy to the final key
followed by a delete of the temporary: S3 creates an object only once a request has completed
in full, so the final key either does not exist or holds every byte, and the temporary is
closed before the copy starts. A crash can leave a temporary behind, never a partial object at
a final key; :meth:`Storage.list` and every reader ignore temporaries.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pyarrow.fs as pafs

from anograph.errors import InputError, StorageUnavailableError

TEMPORARY_MARKER = ".tmp-"
S3_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
S3_QUERY_OPTIONS = ("endpoint_override", "region")
# AWS SDK error names (in pyarrow's OSError text) of a server that is down or overloaded: worth a retry.
# Anything else (ACCESS_DENIED, a bad signature, ...) is a setting to fix, not a fault that passes.
TRANSIENT_S3_ERRORS = (
    "NETWORK_CONNECTION", "SERVICE_UNAVAILABLE", "SLOW_DOWN", "THROTTLING", "REQUEST_TIMEOUT", "INTERNAL_FAILURE",
)


def check_endpoint(endpoint: str) -> tuple[str, str]:
    """``(scheme, host:port)`` of an S3 endpoint URL; refuses one that carries credentials, without echoing them."""
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    if "@" in parts.netloc:
        shown = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1], query="", fragment="").geturl()
        raise InputError(shown, "the S3 endpoint must not carry credentials; use the AWS environment variables "
                                "or ~/.aws")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(endpoint, "the S3 endpoint must look like http(s)://host:port")
    return parts.scheme, parts.netloc


def with_endpoint(root: str, endpoint: str | None) -> str:
    """``root`` with an S3 endpoint override in its query, so the root alone says where to connect.

    The pipeline passes the root string to every task (and a deployment stores it), so the
    endpoint travels inside it; credentials never do. ``endpoint`` is a URL such as
    ``http://127.0.0.1:8333``; ``None`` returns ``root`` unchanged.
    """
    if not endpoint:
        return root
    parts = urlsplit(root)
    if parts.scheme != "s3":
        raise InputError(root, "an S3 endpoint can only be given for an s3:// storage root")
    check_endpoint(endpoint)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    query["endpoint_override"] = endpoint
    return parts._replace(query=urlencode(query, safe=":/")).geturl()


def _s3_filesystem(root: str) -> tuple[pafs.S3FileSystem, str, str]:
    """The S3 filesystem, the ``bucket/prefix`` base and the root shown in messages (no query)."""
    parts = urlsplit(root)
    shown = parts._replace(query="").geturl()  # errors show the root without its query
    if "@" in parts.netloc:
        raise InputError(
            parts._replace(netloc=parts.netloc.rsplit("@", 1)[1], query="").geturl(),
            "the storage root must not carry credentials; use the AWS environment variables or ~/.aws",
        )
    if not parts.netloc:
        raise InputError(shown, "an S3 storage root needs a bucket: s3://bucket/prefix")
    prefix = parts.path.strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise InputError(shown, "the S3 prefix must be a plain path without '.', '..' or '//' parts")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - set(S3_QUERY_OPTIONS))
    if unknown:
        raise InputError(shown, f"unknown S3 option(s) {', '.join(unknown)}; allowed: {', '.join(S3_QUERY_OPTIONS)}")
    endpoint = query.get("endpoint_override") or next(
        (os.environ[name] for name in S3_ENDPOINT_VARIABLES if os.environ.get(name)), None
    )
    options: dict[str, str] = {}
    if endpoint:
        scheme, host = check_endpoint(endpoint)
        options.update(endpoint_override=host, scheme=scheme)
    if query.get("region"):
        options["region"] = query["region"]
    filesystem = pafs.S3FileSystem(**options)  # credentials: the AWS SDK's default chain, never ours
    base = f"{parts.netloc}/{prefix}" if prefix else parts.netloc
    return filesystem, base, shown.rstrip("/")


class Storage:
    """Read and write objects under a root folder or URI.

    Parameters
    ----------
    root:
        A local path (created if missing), ``file://`` URI, ``s3://bucket/prefix`` (optionally
        with ``?endpoint_override=URL&region=NAME``; the bucket must exist), or another URI
        pyarrow understands. See the module docstring for where S3 endpoints and credentials
        come from.
    create:
        Create a local root that does not exist (default ``True``, for writers). ``False``
        refuses it with :class:`InputError` naming the path: for commands that only read.

    Attributes
    ----------
    root:
        The root as given (with its query): what to hand to another task or process.
    uri:
        The root as shown in messages (without the query).
    base:
        The root's path inside :attr:`filesystem` (``bucket/prefix`` on S3).
    """

    def __init__(self, root: str | Path, create: bool = True) -> None:
        root = str(root)
        self.root = root
        if root.startswith("s3://"):
            self.filesystem, base, self.uri = _s3_filesystem(root)
        elif "://" in root:
            self.filesystem, base = pafs.FileSystem.from_uri(root)
            self.uri = root
        else:
            self.filesystem = pafs.LocalFileSystem()
            base = str(Path(root).expanduser().resolve())
            self.uri = root
        self.base = base.rstrip("/") or "/"
        if self.is_object_store:
            self._check_bucket()
        elif create:
            self.filesystem.create_dir(self.base, recursive=True)
        elif self.filesystem.get_file_info(self.base).type != pafs.FileType.Directory:
            raise InputError(self.uri, "storage root does not exist (or is not a folder)")
        self.real_base = os.path.realpath(self.base) if self.is_local else None

    @classmethod
    def open_existing(cls, root: str | Path) -> Storage:
        """The storage root ``root`` for reading: refuses one that does not exist (``create=False``)."""
        return cls(root, create=False)

    def __repr__(self) -> str:
        return f"Storage({self.uri!r})"

    @property
    def is_object_store(self) -> bool:
        """True for S3: no folders, and a rename is a copy."""
        return isinstance(self.filesystem, pafs.S3FileSystem)

    @property
    def is_local(self) -> bool:
        """True for a root on the local filesystem."""
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def _check_bucket(self) -> None:
        bucket = self.base.split("/", 1)[0]
        try:
            found = self.filesystem.get_file_info(bucket).type == pafs.FileType.Directory
        except OSError as error:
            if any(name in str(error) for name in TRANSIENT_S3_ERRORS):  # may be back on the next try
                raise StorageUnavailableError(f"{self.uri}: cannot reach the S3 bucket {bucket!r} ({error})") from error
            raise InputError(self.uri, f"cannot reach the S3 bucket {bucket!r} ({error})") from error
        if not found:
            raise InputError(self.uri, f"S3 bucket {bucket!r} does not exist (anograph does not create buckets)")

    def path(self, key: str) -> str:
        """Absolute filesystem path of ``key``; refuses keys that escape the root."""
        if not key or key.startswith("/") or "\\" in key:
            raise InputError(key, "storage keys must be non-empty relative '/'-separated paths")
        normal = posixpath.normpath(key)
        if normal == ".." or normal.startswith("../") or normal == ".":
            raise InputError(key, f"storage key escapes the storage root {self.uri}")
        target = f"{self.base}/{normal}"
        if self.real_base is not None and not self._inside_root(target):
            raise InputError(key, f"storage key leads outside the storage root {self.uri} through a symbolic link")
        return target

    def _inside_root(self, target: str) -> bool:
        real = os.path.realpath(target)
        return real == self.real_base or real.startswith(self.real_base.rstrip("/") + "/")

    def location(self, key: str) -> str:
        """``key`` as users see it in messages: the root URI (without its query), then the key."""
        return f"{self.uri.rstrip('/')}/{key}"

    def local_path(self, key: str) -> Path | None:
        """The key as a local ``Path`` when the root is local, else ``None``."""
        return Path(self.path(key)) if self.is_local else None

    def exists(self, key: str) -> bool:
        return self.filesystem.get_file_info(self.path(key)).type == pafs.FileType.File

    def read_bytes(self, key: str) -> bytes:
        if not self.exists(key):
            raise InputError(self.location(key), "no such object in storage")
        with self.filesystem.open_input_stream(self.path(key)) as stream:
            return stream.read()

    def open_input(self, key: str) -> pafs.NativeFile:
        """A random-access reader of ``key``, so a Parquet footer can be read without the whole object."""
        if not self.exists(key):
            raise InputError(self.location(key), "no such object in storage")
        return self.filesystem.open_input_file(self.path(key))

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` atomically (temporary key, then rename; see the module docstring)."""
        target = self.path(key)
        if not self.is_object_store:
            self.filesystem.create_dir(posixpath.dirname(target), recursive=True)
        temporary = f"{target}{TEMPORARY_MARKER}{uuid.uuid4().hex}"
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
            if info.type == pafs.FileType.File and TEMPORARY_MARKER not in posixpath.basename(info.path)
            and (self.real_base is None or self._inside_root(info.path))
        ]
        return sorted(keys)
