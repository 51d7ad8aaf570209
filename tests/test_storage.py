"""The storage root: keys, atomic writes, listing, and refusing escapes."""

from __future__ import annotations

import pytest

from anograph.errors import InputError
from anograph.storage import Storage


def test_roundtrip_and_listing(tmp_path):
    storage = Storage(tmp_path / "root")
    storage.write_bytes("shards/a/one.parquet", b"1")
    storage.write_bytes("shards/b/two.parquet", b"22")
    assert storage.read_bytes("shards/b/two.parquet") == b"22"
    assert storage.exists("shards/a/one.parquet")
    assert not storage.exists("shards/a/missing.parquet")
    assert storage.list("shards") == ["shards/a/one.parquet", "shards/b/two.parquet"]
    assert storage.list("nothing-here") == []


def test_overwrite_is_atomic_and_leaves_no_temporary_files(tmp_path):
    storage = Storage(tmp_path)
    storage.write_bytes("k/x.bin", b"old")
    storage.write_bytes("k/x.bin", b"new")
    assert storage.read_bytes("k/x.bin") == b"new"
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["x.bin"]


def test_file_uri_root(tmp_path):
    storage = Storage(f"file://{tmp_path}/via-uri")
    storage.write_bytes("a.txt", b"hello")
    assert (tmp_path / "via-uri" / "a.txt").read_bytes() == b"hello"


@pytest.mark.parametrize("key", ["../outside", "a/../../outside", "/etc/passwd", "", ".", "a\\b"])
def test_keys_that_escape_the_root_are_refused(tmp_path, key):
    storage = Storage(tmp_path / "root")
    with pytest.raises(InputError):
        storage.write_bytes(key, b"x")
    assert not (tmp_path / "outside").exists()


def test_reading_a_missing_key_names_it(tmp_path):
    storage = Storage(tmp_path)
    with pytest.raises(InputError, match="missing.parquet"):
        storage.read_bytes("missing.parquet")
